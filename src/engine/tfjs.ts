/**
 * TF.js as the engine uses it: tfjs-core with its cpu and wasm backends and every gradient
 * registered. Apart from backend.ts so that the public initBackend's declarations import no
 * tfjs module (src/tensor.ts says why); the library's code and tests take `tf` from here.
 */
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';

// tfjs-core's bundles carry no gradient definitions (only the union package registers them), and
// its ESM sources cannot be imported by Node directly (extension-less specifiers). They register
// into tfjs' global registry, shared with the bundle imported above. Compiled (dist/, the package),
// they come bundled into one file by scripts/build.mjs; run from the TypeScript sources through
// tsx, tsx's require hook loads tfjs' own files.
if (import.meta.url.endsWith('.ts')) createRequire(import.meta.url)('@tensorflow/tfjs-core/dist/register_all_gradients.js');
else await import(new URL('./tfjs-gradients.js', import.meta.url).href);

// Production mode: no console advice about tfjs-node, no debug-time checks.
tf.enableProdMode();

export { tf };
