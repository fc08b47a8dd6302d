/**
 * The coordinator runs BullMQ's own removal script inside one of its own (WITHDRAW_SCRIPT), read
 * from BullMQ's package, whose layout is no public API: a BullMQ release within package.json's
 * range may move or change it. Such a BullMQ must cost the queue only: the library and local
 * compares and sweeps (which import the coordinator's module) load as before, and a coordinator
 * that opens says in one line what is wrong, before it connects anywhere.
 * Here a child process whose require hook hides BullMQ's scripts stands for that BullMQ.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'siamese-bullmq-layout-'));
const hide = join(dir, 'hide.cjs');
writeFileSync(
  hide,
  `const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (/bullmq[\\\\/]dist[\\\\/](cjs|esm)[\\\\/]scripts/.test(request)) {
    const e = new Error("Cannot find module '" + request + "'");
    e.code = 'MODULE_NOT_FOUND';
    throw e;
  }
  return resolve.call(this, request, ...rest);
};
`,
);

const script = `
const lib = await import('./src/index.ts');
console.log('loaded', typeof lib.compare, typeof lib.QueueExecutor);
try {
  // port 9: nothing listens there; the layout must be refused before any connection
  await lib.QueueExecutor.open({ url: 'redis://127.0.0.1:9', name: 'g', data: { name: 'mnist', trainChecksum: '0', testChecksum: '0' } });
  console.log('opened');
} catch (e) {
  console.log('refused', e.constructor.name, JSON.stringify(e.message));
}
try {
  await lib.runQueueWorker({ url: 'redis://127.0.0.1:9', signal: AbortSignal.abort(), log: () => {} });
  console.log('worker ran');
} catch (e) {
  console.log('refused', e.constructor.name, JSON.stringify(e.message));
}
`;

test('a BullMQ without the scripts where the coordinator and the worker read them: the library loads; a coordinator and a worker refuse in one line', () => {
  const r = spawnSync(process.execPath, ['--require', hide, '--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines[0], 'loaded function function');
  assert.equal(lines.length, 3, r.stdout);
  for (const [line, script] of [[lines[1], 'removeJob'], [lines[2], 'updateProgress']] as const) {
    const m = /^refused (\w+) (".*")$/.exec(line ?? '');
    assert.ok(m, r.stdout);
    assert.equal(m[1], 'DataError');
    const message = JSON.parse(m[2]!) as string;
    assert.doesNotMatch(message, /\n/);
    assert.match(message, new RegExp(`bullmq .*${script}`));
    assert.doesNotMatch(message, /ECONNREFUSED|connect/i);
  }
});
