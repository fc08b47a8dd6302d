#!/usr/bin/env node
// The siamese command. The project runs its TypeScript sources directly through tsx (no build step).
await import('tsx');
const { main } = await import('../src/cli/main.ts');
await main(process.argv.slice(2));
