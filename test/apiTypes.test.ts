/**
 * Every type of the package that the public API mentions can be named by its users: the types
 * tsc writes into the declarations (parameters, results, members, base classes, `typeof X`) are
 * exported by src/index.ts, under their own names. The declarations are emitted fresh from src/
 * (not taken from a dist/ that may be older), then read by test/declarations.ts.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { tokenize, unexportedTypes } from './declarations.ts';
import { REPO_ROOT } from './helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-api-types-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('every type in the public API is exported by name from the package entry', () => {
  const out = join(root, 'dist');
  const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '-p', join(REPO_ROOT, 'tsconfig.build.json'), '--emitDeclarationOnly', '--outDir', out], { cwd: REPO_ROOT, stdio: 'pipe' });
  const missing = unexportedTypes(out).map((m) => `${m.name} (${m.file.replace(/\.d\.ts$/, '.ts')}, in ${m.usedBy})`);
  assert.deepEqual(missing, []);
});

/** Write the files of a sample package: path -> text. */
function sample(files: Record<string, string>): string {
  const dir = mkdtempSync(join(root, 'sample-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

test('the reader finds the unexported types that declarations mention, and nothing else', () => {
  const dir = sample({
    'index.d.ts': [
      "export { run, type Options, Base as Renamed } from './a.ts';",
      "export { Child } from './b.ts';",
      "export type { Kept } from './c.ts';",
    ].join('\n'),
    'a.d.ts': [
      "import * as tf from '@tensorflow/tfjs-core';",
      "import { type Gone, type Hidden, type Kept, type ViaImport } from './c.ts';",
      'export declare class Base { private hidden; }',
      '/** a comment naming Secret does not count */',
      'export interface Options {',
      '    /** a member named after a type is a name, not a use */',
      '    Hidden: string;',
      '    Gone?: number;',
      '    kept: Kept;',
      '    nested: Promise<Map<string, Array<Result>>>;',
      '    tensor: tf.Tensor;',
      '    onEvent?: (event: ViaImport) => void;',
      '}',
      'interface Result { tail: Tail; }',
      'interface Tail { n: number; }',
      'declare const FILES: { a: 1 };',
      'export declare function run<T extends object>(o: Options, t: T, key: keyof typeof FILES): import("./c.ts").Inline;',
    ].join('\n'),
    'b.d.ts': "import { Hidden } from './c.ts';\nexport declare class Child extends Hidden {\n    method<T>(x: T): T;\n}",
    'c.d.ts': [
      'export interface Kept { a: number; }',
      'export interface ViaImport { b: number; }',
      'export interface Inline { c: number; }',
      'export declare class Hidden { Gone: number; }',
      'export interface Gone { never: true; }',
      'export interface Secret { never: true; }',
    ].join('\n'),
  });
  const got = unexportedTypes(dir).map((m) => `${m.name} in ${m.file} (${m.usedBy})`).sort();
  assert.deepEqual(got, [
    'FILES in a.d.ts (run)',
    'Hidden in c.d.ts (Child)',
    'Inline in c.d.ts (run)',
    'Result in a.d.ts (Options)',
    'Tail in a.d.ts (Result)',
    'ViaImport in c.d.ts (Options)',
  ]);
});

test('the tokenizer drops comments and keeps strings whole', () => {
  assert.deepEqual(tokenize("a /* b */ 'c d' // e\n f => ...g"), ['a', "'c d'", 'f', '=>', '...', 'g']);
});
