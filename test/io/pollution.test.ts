// Prototype pollution: every parser of untrusted text (safetensors headers, .npy headers, run
// manifests' configs, loss specs, formulas) is fed keys that would pollute Object.prototype through
// a careless merge or assignment; afterwards a fresh object must still have no such property.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { parseLossSpec } from '../../src/experiments/lossSpec.ts';
import { parseNpy } from '../../src/io/npy.ts';
import { encodeSafetensors, parseSafetensors } from '../../src/io/safetensors.ts';
import { parseExpression } from '../../src/losses/expr.ts';
import { resolveConfig } from '../../src/train/config.ts';

const polluted = (): unknown => ({} as Record<string, unknown>)['polluted'];

afterEach(() => {
  assert.equal(polluted(), undefined, 'Object.prototype was polluted');
  assert.deepEqual(Object.keys(Object.prototype), []);
});

/** A safetensors file with the given raw JSON header and `bytes` bytes of data. */
function safetensors(header: string, bytes: number): Uint8Array {
  const h = Buffer.from(header, 'utf8');
  const out = new Uint8Array(8 + h.length + bytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  return out;
}

test('safetensors: __proto__ and constructor keys in the header stay data', () => {
  const header =
    '{"__metadata__":{"__proto__":{"polluted":"meta"},"constructor":{"prototype":{"polluted":"ctor"}}},' +
    '"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
  try {
    const { tensors } = parseSafetensors(safetensors(header, 4));
    assert.equal(tensors[0]!.name, '__proto__');
  } catch (e) {
    assert.match((e as Error).message, /metadata|string/); // refusing the nested object is fine too
  }
  // and a valid file whose metadata key is __proto__ round-trips as a plain entry
  const { metadata } = parseSafetensors(encodeSafetensors([{ name: 'w', shape: [1], data: new Float32Array([1]) }], JSON.parse('{"__proto__":"x"}')));
  assert.equal(Object.getOwnPropertyDescriptor(metadata, '__proto__')?.value, 'x');
});

test('.npy: a header dictionary with __proto__ is refused or ignored, never merged into a prototype', () => {
  const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), '__proto__': {'polluted': 1}, }";
  const header = dict.padEnd(118, ' ') + '\n';
  const bytes = new Uint8Array(10 + header.length + 4);
  bytes.set([0x93, ...Buffer.from('NUMPY'), 1, 0], 0);
  new DataView(bytes.buffer).setUint16(8, header.length, true);
  bytes.set(Buffer.from(header, 'latin1'), 10);
  try {
    const arr = parseNpy(bytes);
    assert.deepEqual(arr.shape, [1]);
  } catch (e) {
    assert.match((e as Error).message, /header|key|unexpected|dictionary/i);
  }
});

test('a run manifest config with __proto__ and constructor keys resolves without pollution', () => {
  const config = JSON.parse('{"loss":"contrastive","__proto__":{"polluted":"config"},"lossParams":{"__proto__":{"polluted":"params"}},"constructor":{"prototype":{"polluted":"ctor"}}}');
  try {
    const c = resolveConfig(config);
    assert.equal(c.loss, 'contrastive');
  } catch (e) {
    assert.match((e as Error).message, /unknown|param|option|config/i);
  }
});

test('loss specs and formulas with __proto__ are refused with a usage error', () => {
  assert.throws(() => parseLossSpec('contrastive:__proto__=1'), /__proto__/);
  assert.throws(() => parseLossSpec('custom:pos=d;neg=1/d;constructor=1'), /constructor/);
  assert.throws(() => parseExpression('__proto__'), /unknown name "__proto__"/);
});
