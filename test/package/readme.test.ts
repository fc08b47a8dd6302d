/** Which code blocks of a README count as its library examples (test/package/readme.ts). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers.ts';
import { readmeExamples } from './readme.ts';

const F = '```';

test('without marks: the TypeScript blocks of "The library", not those of other sections or other languages', () => {
  const md = [
    '# tool', '', `${F}ts`, 'intro();', F, '', '## The library', '', 'Text.', '', `${F}ts`, 'one();', F,
    `${F}sh`, '# not a heading', 'npm test', F, '', '### Details', '', `${F}typescript`, 'two();', F,
    '## Results', '', `${F}ts`, 'three();', F,
  ].join('\n');
  assert.deepEqual(readmeExamples(md), [{ line: 11, code: 'one();\n' }, { line: 21, code: 'two();\n' }]);
});

test('marked blocks only, wherever they are, when the README marks any', () => {
  const md = ['## The library', `${F}ts`, 'unmarked();', F, '<!-- example -->', '', `${F}ts`, 'a();', 'b();', F, '## Elsewhere', '<!--example-->', '~~~ts', 'c();', '~~~'].join('\n');
  assert.deepEqual(readmeExamples(md), [{ line: 7, code: 'a();\nb();\n' }, { line: 13, code: 'c();\n' }]);
});

test('a fence of four backticks holds a three-backtick line', () => {
  const md = ['## The library', '````ts', 'const s = `', '```', '`;', '````'].join('\n');
  assert.deepEqual(readmeExamples(md), [{ line: 2, code: 'const s = `\n```\n`;\n' }]);
});

test("this repository's README has library examples that import the package by name", () => {
  const ex = readmeExamples(readFileSync(join(REPO_ROOT, 'README.md'), 'utf8'));
  assert.ok(ex.length >= 1, 'no library example found in README.md');
  assert.ok(ex.some((e) => /from 'siamese-lab'/.test(e.code)), 'no example imports siamese-lab');
});
