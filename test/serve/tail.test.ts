/**
 * The incremental reader of serve/tail.ts and the page's merge (web/chunks.ts) without a server:
 * a seeded random writer appends log and distances lines in pieces (half lines, blank lines,
 * lines that are not JSON, epochs out of order, files replaced whole), and after every read
 * the page's merged state must equal the whole file parsed at once, the oracle: the same
 * records, the same skipped-line messages with the same line numbers, the same note.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Rng } from '../../src/rng.ts';
import { DISTANCE_LINES } from '../../src/serve/distances.ts';
import { LOG_LINES, MAX_SKIPPED_KEPT } from '../../src/serve/scan.ts';
import { type Chunk, type LineParser, parseAt, parseText, Tails, WINDOW } from '../../src/serve/tail.ts';
import { at, type Held, merge } from '../../src/web/chunks.ts';
import { distanceLine, epochLine } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'siamese-tail-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function check<R, C>(name: string, parser: LineParser<R, C>, lineOf: (epoch: number) => string, seed: number): void {
  const path = join(dir, `${name}-${seed}`);
  const tails = new Tails(1 << 20);
  const rng = new Rng(seed);
  const rand = (): number => rng.next();
  let text = '';
  let page: Held<R> | undefined;
  let resets = 0;
  let bytesSent = 0;
  const read = (): void => {
    const t = tails.read('k', 'run', path, parser, page ? undefined : {});
    if (t.changed) {
      bytesSent += JSON.stringify(t.changed).length;
      if (t.changed.reset) resets++;
      const m = merge(page, t.changed);
      assert.notEqual(m, 'resync');
      if (typeof m !== 'string') page = m;
    }
    if (!page) page = merge(undefined, t.answer!) as Held<R>;
    const whole = parseText(parser, text);
    assert.deepEqual(page.epochs, whole.records, `${name} seed ${seed}: the records after ${text.length} bytes`);
    assert.deepEqual(page.messages, whole.partial ? [...whole.skipped, parser.partial(whole.carry)] : whole.skipped);
    assert.equal(page.to, text.lastIndexOf('\n') + 1);
  };
  writeFileSync(path, '');
  read();
  let epoch = 0;
  let pendingLine = '';
  for (let step = 0; step < 300; step++) {
    const u = rand();
    let piece: string;
    if (pendingLine !== '') {
      piece = pendingLine;
      pendingLine = '';
    } else if (u < 0.6) {
      piece = lineOf(++epoch);
    } else if (u < 0.7) {
      // half a line: the rest comes with the next step
      const l = lineOf(++epoch);
      const cut = 1 + Math.floor(rand() * (l.length - 2));
      piece = l.slice(0, cut);
      pendingLine = l.slice(cut);
    } else if (u < 0.75) {
      piece = '\n';
    } else if (u < 0.8) {
      piece = 'not json\n';
    } else if (u < 0.85) {
      piece = lineOf(Math.max(1, epoch - 1)); // an epoch out of order (a skipped histogram; a log takes it)
    } else if (u < 0.9) {
      // several lines at once
      piece = lineOf(++epoch) + lineOf(++epoch);
    } else if (u < 0.95) {
      // the trainer's rename of the same content plus a line: still an append
      text += lineOf(++epoch);
      writeFileSync(`${path}.tmp`, text);
      renameSync(`${path}.tmp`, path);
      read();
      continue;
    } else {
      // replaced by other content (a restarted run): a reset
      const held = text.slice(0, text.lastIndexOf('\n') + 1);
      epoch = 0;
      pendingLine = '';
      text = lineOf(++epoch);
      writeFileSync(`${path}.tmp`, text);
      renameSync(`${path}.tmp`, path);
      const before = resets;
      read();
      // (unless the lines read so far are the new file's first: then it still is an append)
      assert.equal(resets, text.startsWith(held) ? before : before + 1, 'a replaced file is a reset');
      continue;
    }
    text += piece;
    appendFileSync(path, piece);
    read();
  }
  // incremental: far fewer bytes than the file resent at every step
  assert.ok(bytesSent < 4 * text.length * (resets + 1) + 300 * 200, `${bytesSent} bytes sent`);
}

describe('serve: incremental JSON lines', () => {
  for (const seed of [1, 2, 3]) {
    it(`log.jsonl: the merged chunks are the whole file parsed (seed ${seed})`, () => {
      check('log', LOG_LINES, (e) => JSON.stringify(epochLine(e)) + '\n', seed);
    });
    it(`distances.jsonl: the merged chunks are the whole file parsed, out-of-order epochs across chunks included (seed ${seed})`, () => {
      check('distances', DISTANCE_LINES, (e) => JSON.stringify(distanceLine(e)) + '\n', seed);
    });
  }

  it('answers an offset of its generation with the lines after it, anything else whole', () => {
    const path = join(dir, 'at');
    writeFileSync(path, [1, 2, 3].map((e) => JSON.stringify(epochLine(e)) + '\n').join(''));
    const tails = new Tails(1 << 20);
    const first = tails.read('k', 'run', path, LOG_LINES, {});
    const page = merge(undefined, first.answer!) as Held<unknown>;
    appendFileSync(path, JSON.stringify(epochLine(4)) + '\n');
    const answer = (s: string): Chunk<unknown> => tails.read('k', 'run', path, LOG_LINES, { at: parseAt(s) }).answer!;
    const rest = answer(at(page));
    assert.deepEqual([rest.reset, rest.from, rest.epochs], [false, page.to, [epochLine(4)]]);
    assert.equal(answer(`${page.gen}:${page.to + 1}`).reset, true, 'not a line end');
    assert.equal(answer(`${page.gen}:999999`).reset, true, 'beyond the end');
    assert.equal(answer('garbage').reset, true);
    assert.equal(parseAt('abc.1:12x'), undefined);
  });

  it('a page ignores what it already holds and asks again after a gap', () => {
    const c = (from: number, to: number, gen = 'aa.1', reset = false): Chunk<number> => ({ id: 'r', gen, from, to, reset, epochs: [to], skipped: [], note: null });
    const h = merge(undefined, c(0, 10, 'aa.1', true)) as Held<number>;
    assert.deepEqual((merge(h, c(10, 20)) as Held<number>).epochs, [10, 20]);
    assert.equal(merge(h, c(0, 10)), 'same');
    assert.equal(merge(h, c(20, 30)), 'resync', 'a gap');
    assert.equal(merge(h, c(20, 30, 'aa.2')), 'resync', 'a newer generation without its reset');
    assert.equal(merge(h, c(0, 5, 'aa.0', true)), 'same', 'an older generation');
    assert.deepEqual((merge(h, c(0, 5, 'aa.2', true)) as Held<number>).epochs, [5], 'a reset replaces');
    assert.deepEqual((merge(h, c(0, 5, 'bb.1', true)) as Held<number>).epochs, [5], 'another server');
    assert.equal(merge(undefined, c(10, 20)), 'ignore', 'a run the page does not hold');
  });

  it('across a server restart, the page takes chunks only of the server it is connected to, whichever arrives first', () => {
    const c = (from: number, to: number, gen: string, reset = false): Chunk<number> => ({ id: 'r', gen, from, to, reset, epochs: [to], skipped: [], note: null });
    const old = 'aa';
    const now = 'bb';
    // the page held the old server's generation aa.5, up to byte 10
    const h = merge(undefined, c(0, 10, 'aa.5', true), old) as Held<number>;
    // the new server's runs event (current = bb), its reset, then a late reply of the old server
    // (a slow at= request answered before it stopped: a higher counter of another process)
    const fresh = merge(h, c(0, 30, 'bb.1', true), now) as Held<number>;
    assert.deepEqual([fresh.gen, fresh.epochs], ['bb.1', [30]], "the new server's reset replaces");
    assert.equal(merge(fresh, c(0, 40, 'aa.9', true), now), 'same', "the old server's late whole file is dropped");
    assert.equal(merge(fresh, c(30, 40, 'aa.9')), 'resync', '(without knowing the server it would have counted as later)');
    assert.equal(merge(fresh, c(10, 20, 'aa.5'), now), 'same', "the old server's late append to what the page held before");
    assert.equal(merge(undefined, c(0, 40, 'aa.9', true), now), 'same', 'nor taken for a run the page does not hold');
    assert.deepEqual((merge(fresh, c(30, 35, 'bb.1'), now) as Held<number>).epochs, [30, 35], "the new server's next lines follow on");
    // the reverse order: the old server's late reply while the page is still connected to it, then the new server's reset
    const late = merge(h, c(0, 40, 'aa.9', true), old) as Held<number>;
    assert.deepEqual([late.gen, late.epochs], ['aa.9', [40]], 'still the current server: taken');
    const after = merge(late, c(0, 30, 'bb.1', true), now) as Held<number>;
    assert.deepEqual([after.gen, after.epochs], ['bb.1', [30]], "then the new server's reset replaces it");
    assert.equal(merge(after, c(0, 40, 'aa.9', true), now), 'same');
    // an append of the new server to the old generation held: ask for what follows (a whole file comes back)
    assert.equal(merge(late, c(30, 35, 'bb.1'), now), 'resync');
  });

  it('an append reads the two hashed windows and the new bytes; a resume from an earlier epoch is read whole as a reset', () => {
    const path = join(dir, 'cost');
    const log = (from: number, to: number, loss = 0): string => Array.from({ length: to - from + 1 }, (_, i) => JSON.stringify({ ...epochLine(from + i), loss: loss + from + i }) + '\n').join('');
    let text = log(1, 100);
    writeFileSync(path, text);
    const tails = new Tails(1 << 20);
    tails.read('k', 'run', path, LOG_LINES);
    assert.equal(tails.bytesRead, text.length, 'the first read: the whole file');
    for (let e = 101; e <= 110; e++) {
      const add = log(e, e);
      text += add;
      writeFileSync(`${path}.tmp`, text);
      renameSync(`${path}.tmp`, path);
      const before = tails.bytesRead;
      const t = tails.read('k', 'run', path, LOG_LINES);
      assert.equal(tails.bytesRead - before, 2 * WINDOW + add.length, `epoch ${e}: windows and the new line, not ${text.length} bytes`);
      assert.deepEqual([t.changed?.reset, t.changed?.epochs.length], [false, 1]);
      const s = tails.state<{ epochs: number; last: { epoch: number } }>('k')!;
      assert.deepEqual([s.carry.epochs, s.carry.last.epoch], [e, e]);
    }
    // resumed from epoch 90's checkpoint: the same first 90 lines, then other numbers, and longer
    text = log(1, 90) + log(91, 115, 1000);
    writeFileSync(`${path}.tmp`, text);
    renameSync(`${path}.tmp`, path);
    const t = tails.read('k', 'run', path, LOG_LINES);
    assert.equal(t.changed?.reset, true);
    assert.deepEqual(t.changed?.epochs, parseText(LOG_LINES, text).records);
    assert.equal(tails.state<{ epochs: number }>('k')!.carry.epochs, 115);
  });

  it('a log of garbage: its row keeps the first skipped lines\' messages and counts the rest', () => {
    const text = Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? 'not json\n' : JSON.stringify(epochLine(i)) + '\n')).join('');
    const r = parseText(LOG_LINES, text);
    assert.equal(r.skipped.length, 25, 'the chunk still says why each line was skipped');
    assert.equal(r.carry.epochs, 25);
    assert.deepEqual(r.carry.skipped, r.skipped.slice(0, MAX_SKIPPED_KEPT));
    assert.equal(r.carry.more, 25 - MAX_SKIPPED_KEPT);
  });

  it('forgets the files of runs that vanished', () => {
    const tails = new Tails(1 << 20);
    for (let i = 0; i < 5; i++) tails.read(`run${i}\nlog`, `run${i}`, join(dir, 'none'), LOG_LINES);
    assert.equal(tails.size, 5);
    tails.prune((k) => k.startsWith('run1') || k.startsWith('run3'));
    assert.equal(tails.size, 2);
  });
});
