/**
 * The native batch kernels' workspace (native/src/addon.c, one per thread): it keeps its size
 * while calls keep their size (a trainer's steps allocate nothing), but does not keep a large
 * call's memory: above 64 MiB it is freed after a call that needed other than the call before,
 * and it shrinks to the need after 8 calls in a row that each needed under a quarter of it.
 * Observed through the addon's workspaceBytes() and workspaceAllocations(); the calls are the
 * public lossOnBatch's. (This file runs in its own process: the workspace starts empty.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nativeAddon, nativeStatus } from '../../src/engine/native.ts';
import { lossOnBatch } from '../../src/losses/registry.ts';
import { Rng } from '../../src/rng.ts';

const status = nativeStatus();
const KEEP = 64 * 2 ** 20;

function batch(n: number, dim: number, seed: number): { emb: Float32Array; labels: Int32Array } {
  const r = new Rng(seed);
  return { emb: Float32Array.from({ length: n * dim }, () => r.normal()), labels: Int32Array.from({ length: n }, (_, i) => i % 10) };
}

function call(b: { emb: Float32Array; labels: Int32Array }, dim: number, loss = 'nt-xent'): void {
  assert.ok(Number.isFinite(lossOnBatch(loss, b.emb, b.labels, dim).loss));
}

test('the batch kernels’ workspace: steady calls allocate once; a large call’s memory comes back', (t) => {
  if (!status.available) {
    t.diagnostic(`native engine not available (${status.detail})`);
    return;
  }
  const k = nativeAddon();
  const dim = 4;
  const small = batch(120, dim, 1);

  // a trainer: the same batch every step, one allocation in all
  const a0 = k.workspaceAllocations();
  call(small, dim);
  const steadyBytes = k.workspaceBytes();
  assert.ok(steadyBytes > 0 && steadyBytes < 2 ** 20, `a batch of 120 holds ${steadyBytes} bytes`);
  for (let s = 0; s < 30; s++) call(small, dim, s % 2 ? 'nt-xent' : 'multi-similarity');
  assert.equal(k.workspaceAllocations() - a0, 1, 'steady calls allocate once');
  assert.equal(k.workspaceBytes(), steadyBytes);

  // nt-xent's logs take one value per eight positives: the whole under 3.5 n² doubles (n² for S, n² for G, ...)
  const mid = batch(800, dim, 2);
  call(mid, dim);
  const midBytes = k.workspaceBytes();
  assert.ok(midBytes < 3.5 * 800 * 800 * 8, `a batch of 800 holds ${midBytes} bytes`);
  assert.ok(midBytes > 4 * steadyBytes && midBytes < KEEP);

  // then small calls: kept for 7, shrunk to the small need at the 8th, kept after it
  const a1 = k.workspaceAllocations();
  for (let s = 1; s <= 7; s++) {
    call(small, dim);
    assert.equal(k.workspaceBytes(), midBytes, `small call ${s}: still held`);
  }
  call(small, dim);
  assert.equal(k.workspaceBytes(), steadyBytes, 'the 8th small call in a row shrinks it to the need');
  for (let s = 0; s < 20; s++) call(small, dim);
  assert.equal(k.workspaceAllocations() - a1, 1, 'one allocation to shrink, none after');
  assert.equal(k.workspaceBytes(), steadyBytes);

  // one call needing more than 64 MiB: given back at its end
  const big = batch(2000, dim, 3);
  call(big, dim);
  assert.equal(k.workspaceBytes(), 0, 'a one-off call over 64 MiB frees it after itself');
  // the same large call again and again (a trainer of large batches): kept between them
  call(big, dim);
  const bigBytes = k.workspaceBytes();
  assert.ok(bigBytes > KEEP, `a batch of 2000 holds ${bigBytes} bytes`);
  const a2 = k.workspaceAllocations();
  call(big, dim);
  call(big, dim);
  assert.equal(k.workspaceAllocations(), a2, 'repeated large calls allocate nothing');
  // and a smaller call after them gives it back
  call(small, dim);
  assert.equal(k.workspaceBytes(), 0, 'held over 64 MiB by another call: freed');
  call(small, dim);
  assert.equal(k.workspaceBytes(), steadyBytes);
});
