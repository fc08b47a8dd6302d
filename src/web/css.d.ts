// esbuild bundles CSS imports into app.css; for tsc they are modules without exports.
declare module '*.css';
