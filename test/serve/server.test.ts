/**
 * The server of `siamese serve` without a browser: raw HTTP requests for the API, path
 * traversal attempts, damaged files (a log being written, a corrupt results.json, a missing
 * log), and the event stream when a log grows.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, appendFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseLossSpec } from '../../src/experiments/lossSpec.ts';
import { lossShape } from '../../src/experiments/lossShape.ts';
import { MAX_LOGS, type Served, startServer } from '../../src/serve/server.ts';
import type { EpochLine, RunInfo } from '../../src/serve/scan.ts';
import type { Chunk } from '../../src/serve/tail.ts';
import { type Held, merge } from '../../src/web/chunks.ts';
import { syntheticResults } from '../fixtures/compareResults.ts';
import { appendDistances, appendEpoch, distanceLine, ensureWebBuilt, epochLine, getJson, rawGet, writeManifest } from './helpers.ts';

const base = mkdtempSync(join(tmpdir(), 'siamese-serve-'));
const root = join(base, 'served');
const secret = join(base, 'secret');
const results = syntheticResults();
let served: Served;

before(async () => {
  ensureWebBuilt();
  mkdirSync(join(root, 'cmp'), { recursive: true });
  writeFileSync(join(root, 'cmp', 'results.json'), JSON.stringify(results));
  // a results.json whose first run lacks its evaluation, and whose second lacks its retrieval
  // measures (the validator checks only what the report draws)
  const partial = JSON.parse(JSON.stringify(results)) as Record<string, unknown> & { runs: Record<string, unknown>[] };
  delete partial.runs[0]!['evaluation'];
  delete (partial.runs[1]!['evaluation'] as Record<string, unknown>)['retrieval'];
  mkdirSync(join(root, 'noeval'), { recursive: true });
  writeFileSync(join(root, 'noeval', 'results.json'), JSON.stringify(partial));
  mkdirSync(join(root, 'bad'), { recursive: true });
  writeFileSync(join(root, 'bad', 'results.json'), '{"tool": "siamese-lab", "runs": [');
  // a run being written: two epochs and half of the third line
  const live = join(root, 'live-seed4');
  writeManifest(live, { loss: 'yukawa', params: { kappa: 5, power: 3 }, seed: 4, epochs: 5 });
  appendEpoch(live, 1);
  appendEpoch(live, 2);
  appendFileSync(join(live, 'log.jsonl'), JSON.stringify(epochLine(3)).slice(0, 20));
  // its distances: two epochs, a line that is not JSON, one that is not a histogram (a count
  // missing), an epoch out of order, and half of the next line
  appendDistances(live, 1);
  appendDistances(live, 2);
  const short = distanceLine(3);
  short.pos.counts.pop();
  appendFileSync(join(live, 'distances.jsonl'), `garbage\n${JSON.stringify(short)}\n${JSON.stringify(distanceLine(1))}\n${JSON.stringify(distanceLine(3)).slice(0, 30)}`);
  // a run that has no log at all
  writeManifest(join(root, 'nolog'), { loss: 'contrastive', params: { margin: 1 }, seed: 0, epochs: 3 });
  // a batch loss still training: its accuracies will be at the best threshold (no distance scale)
  writeManifest(join(root, 'batchlog'), { loss: 'nt-xent', params: {}, seed: 0, epochs: 3 });
  mkdirSync(secret, { recursive: true });
  writeFileSync(join(secret, 'secret.txt'), 'TOP-SECRET');
  symlinkSync(secret, join(root, 'link'));
  served = await startServer({ dirs: [root], port: 0, pollMs: 200 });
});

after(async () => {
  await served?.close();
  rmSync(base, { recursive: true, force: true });
});

const api = <T>(path: string): Promise<T> => getJson<T>(served.port, path);
/** what the page shows of a chunk: its skipped lines, then its note */
const messagesOf = (c: Chunk<unknown>): string[] => (c.note === null ? c.skipped : [...c.skipped, c.note]);
type Runs = { folders: { id: string; path: string; message: string | null }[]; runs: RunInfo[] };

describe('siamese serve: API', () => {
  it('binds 127.0.0.1 and prints a URL with the chosen port', () => {
    assert.equal(served.host, '127.0.0.1');
    assert.match(served.url, new RegExp(`^http://127\\.0\\.0\\.1:${served.port}/$`));
  });

  it('lists the runs of results.json with its numbers, and the run being written', async () => {
    const r = await api<Runs>('/api/runs');
    for (const want of results.runs) {
      const row = r.runs.find((x) => x.group === want.lossId && x.seed === want.seed);
      assert.ok(row, `${want.lossId} seed ${want.seed} listed`);
      assert.equal(row.pairAccuracy, want.evaluation.pairs.accuracy);
      assert.equal(row.pairAccuracyAt, 'threshold');
      assert.equal(row.mapAtR, want.evaluation.retrieval!.mapAtR);
      assert.equal(row.epochsDone, want.history.length);
      assert.equal(row.lastLoss, want.history.at(-1)!.loss);
    }
    const live = r.runs.find((x) => x.path.endsWith('live-seed4'));
    assert.ok(live);
    assert.equal(live.loss, 'yukawa');
    assert.equal(live.seed, 4);
    assert.equal(live.status, 'running');
    assert.equal(live.epochsDone, 2, 'the partial third line is not an epoch');
    assert.equal(live.testAccuracy, epochLine(2)['testAccuracy']);
    assert.equal(live.seconds, 4);
    assert.match(live.messages.join('\n'), /last line is incomplete/);
    const nolog = r.runs.find((x) => x.path.endsWith('nolog'));
    assert.ok(nolog);
    assert.equal(nolog.pairAccuracyAt, 'threshold');
    assert.equal(r.runs.find((x) => x.path.endsWith('batchlog'))?.pairAccuracyAt, 'best');
    assert.match(nolog.messages.join('\n'), /log\.jsonl does not exist/);
  });

  it('lists a results.json run that lacks its evaluation with its measures missing (null, "–" on the page), not a message for the folder', async () => {
    const r = await api<Runs>('/api/runs');
    const folder = r.folders.find((f) => f.path.endsWith('noeval'));
    assert.ok(folder);
    assert.equal(folder.message, null, 'no "Cannot read properties of undefined" for the folder');
    const rows = r.runs.filter((x) => x.folder === folder.id);
    assert.equal(rows.length, results.runs.length, 'every run listed');
    const [first, second] = [results.runs[0]!, results.runs[1]!].map((want) => rows.find((x) => x.group === want.lossId && x.seed === want.seed)!);
    assert.equal(first!.pairAccuracy, null);
    assert.equal(first!.mapAtR, null);
    assert.equal(first!.pairAccuracyAt, 'threshold', `${results.runs[0]!.lossId}: a loss with a distance scale`);
    assert.equal(first!.epochsDone, results.runs[0]!.history.length, 'what the file has is still shown');
    assert.equal(first!.lastLoss, results.runs[0]!.history.at(-1)!.loss);
    assert.equal(second!.pairAccuracy, results.runs[1]!.evaluation.pairs.accuracy);
    assert.equal(second!.mapAtR, null);
  });

  it('answers a corrupt results.json with a message, for the folder and its results', async () => {
    const r = await api<Runs>('/api/runs');
    const bad = r.folders.find((f) => f.path.endsWith('bad'));
    assert.ok(bad);
    assert.match(bad.message ?? '', /not valid JSON/);
    const res = await api<{ ok: boolean; message: string }>(`/api/results?folder=${encodeURIComponent(bad.id)}`);
    assert.equal(res.ok, false);
    assert.match(res.message, /not valid JSON/);
    const good = r.folders.find((f) => f.path.endsWith('cmp'))!;
    const ok = await api<{ ok: boolean; results: typeof results }>(`/api/results?folder=${encodeURIComponent(good.id)}`);
    assert.equal(ok.ok, true);
    assert.deepEqual(ok.results.summary.map((s) => s.accuracy.mean), results.summary.map((s) => s.accuracy.mean));
  });

  it('refuses test images whose labels differ from the t-SNE subset\'s', async () => {
    // the fixture's subset labels are i % 10, not MNIST's first test labels (7, 2, 1, 0, ...)
    const r = await api<Runs>('/api/runs');
    const good = r.folders.find((f) => f.path.endsWith('cmp'))!;
    const img = await api<{ ok: boolean; message: string }>(`/api/images?folder=${encodeURIComponent(good.id)}`);
    assert.equal(img.ok, false);
    assert.match(img.message, /not the ones of this comparison \(image 0: label 7, results\.json says 0\)/);
  });

  it('returns a log: complete lines only', async () => {
    const r = await api<Runs>('/api/runs');
    const live = r.runs.find((x) => x.path.endsWith('live-seed4'))!;
    const log = await api<Chunk<unknown>>(`/api/log?run=${encodeURIComponent(live.id)}`);
    assert.deepEqual(log.epochs, [epochLine(1), epochLine(2)]);
    assert.deepEqual(messagesOf(log), ['log.jsonl: the last line is incomplete (being written): epoch 3 not shown yet']);
    // the whole file, up to the end of its last complete line
    assert.equal(log.reset, true);
    assert.equal(log.from, 0);
    assert.equal(log.to, (JSON.stringify(epochLine(1)) + JSON.stringify(epochLine(2))).length + 2);
  });

  it('returns several logs in one answer, leaves out runs it does not have, and refuses more than MAX_LOGS runs', async () => {
    const r = await api<Runs>('/api/runs');
    const live = r.runs.find((x) => x.path.endsWith('live-seed4'))!;
    const nolog = r.runs.find((x) => x.path.endsWith('nolog'))!;
    const q = (ids: string[]): string => `/api/logs?${ids.map((id) => `run=${encodeURIComponent(id)}`).join('&')}`;
    const got = await api<{ logs: Chunk<unknown>[] }>(q([live.id, '0:gone', nolog.id, live.id]));
    assert.deepEqual(got.logs.map((l) => l.id), [live.id, nolog.id]);
    assert.deepEqual(got.logs[0]!.epochs, [epochLine(1), epochLine(2)]);
    assert.equal(messagesOf(got.logs[0]!).length, 1, 'the partial line');
    assert.deepEqual(got.logs[1]!.epochs, []);
    assert.match(messagesOf(got.logs[1]!)[0]!, /log\.jsonl does not exist/);
    // at= must come once per run= when given
    assert.equal((await rawGet(served.port, `${q([live.id, nolog.id])}&at=`)).status, 400);
    const tooMany = await rawGet(served.port, q(Array.from({ length: MAX_LOGS + 1 }, (_, i) => `0:run${i}`)));
    assert.equal(tooMany.status, 400);
    assert.match(tooMany.body, new RegExp(`give 1 to ${MAX_LOGS} runs .*got ${MAX_LOGS + 1}`));
    assert.equal((await rawGet(served.port, '/api/logs')).status, 400);
  });

  it('returns per-epoch distances: valid complete lines only, a message for each line skipped', async () => {
    const r = await api<Runs>('/api/runs');
    const live = r.runs.find((x) => x.path.endsWith('live-seed4'))!;
    assert.equal(live.distances, true);
    assert.equal(r.runs.find((x) => x.path.endsWith('nolog'))!.distances, false);
    const d = await api<Chunk<unknown>>(`/api/distances?run=${encodeURIComponent(live.id)}`);
    assert.equal(d.id, live.id);
    assert.deepEqual(d.epochs, [distanceLine(1), distanceLine(2)]);
    assert.deepEqual(messagesOf(d), [
      'distances.jsonl line 3 is not JSON: skipped',
      'distances.jsonl line 4 is not a distance histogram: skipped',
      'distances.jsonl line 5: epoch 1 after epoch 2: skipped',
      'distances.jsonl: the last line is incomplete (being written): not shown yet',
    ]);
    const none = await api<Chunk<unknown>>(`/api/distances?run=${encodeURIComponent(r.runs.find((x) => x.path.endsWith('nolog'))!.id)}`);
    assert.deepEqual(
      { id: none.id, epochs: none.epochs, messages: messagesOf(none), reset: none.reset, to: none.to },
      { id: r.runs.find((x) => x.path.endsWith('nolog'))!.id, epochs: [], messages: ['distances.jsonl does not exist (yet)'], reset: true, to: 0 },
    );
    assert.equal((await rawGet(served.port, '/api/distances?run=nope')).status, 404);
  });

  it('samples loss shapes with the project\'s losses, and refuses a bad formula with its message', async () => {
    const s = await api<{ d: number[]; pos: number[]; neg: number[] }>(`/api/shape?spec=${encodeURIComponent('contrastive:margin=2')}`);
    assert.equal(s.d.length, 151);
    // hand-computed: contrastive pos = D^2, neg = max(2 - D, 0)^2, capped at 4
    assert.equal(s.pos[50], 0.25);
    assert.equal(s.neg[50], 2.25);
    assert.equal(s.neg[0], 4);
    // a batch loss's playground shape is the report's, label note included
    const ms = await api<{ label: string; d: number[]; pos: number[]; neg: number[] }>(`/api/shape?spec=${encodeURIComponent('multi-similarity')}`);
    const report = lossShape(parseLossSpec('multi-similarity'));
    assert.deepEqual({ label: ms.label, d: ms.d, pos: ms.pos, neg: ms.neg }, { label: report.label, d: report.d, pos: report.pos, neg: report.neg });
    assert.match(ms.label, /3-point batch/);
    const bad = await rawGet(served.port, `/api/shape?spec=${encodeURIComponent('custom:pos=d^;neg=1/d')}`);
    assert.equal(bad.status, 200);
    assert.match(JSON.parse(bad.body).error as string, /column/);
  });
});

describe('siamese serve: start-up errors', () => {
  it('a port in use and a missing folder are one-line errors, not crashes', async () => {
    await assert.rejects(startServer({ dirs: [root], port: served.port }), { name: 'UsageError', message: `port ${served.port} is in use: choose another with --port` });
    await assert.rejects(startServer({ dirs: [join(base, 'missing')], port: 0 }), { name: 'DataError', message: `${join(base, 'missing')}: no such folder` });
    await assert.rejects(startServer({ dirs: [root], port: 0, webDir: join(base, 'no-web') }), /the page is not built .*npm run build:web/);
  });
});

describe('siamese serve: read-only and inside the served folders', () => {
  it('serves a file of a served folder (the control of the 404s below)', async () => {
    const r = await rawGet(served.port, '/files/0/cmp/results.json');
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).createdAt, results.createdAt);
  });

  for (const path of [
    '/files/0/../secret/secret.txt',
    '/files/0/cmp/../../secret/secret.txt',
    '/files/0/%2e%2e/secret/secret.txt',
    '/files/0/%2E%2E/secret/secret.txt',
    '/files/0/%2e%2e%2fsecret%2fsecret.txt',
    '/files/0/cmp%2f..%2f..%2fsecret%2fsecret.txt',
    '/files/0/..%5csecret%5csecret.txt',
    '/files/0/%252e%252e/secret/secret.txt',
    '/files/0/link/secret.txt',
    '/files/0/' + encodeURIComponent(join(secret, 'secret.txt')),
    '/files/0/%00',
    '/files/0/%E0%A4%A',
    '/files/1/secret.txt',
    '/files/-1/secret.txt',
    '/../secret/secret.txt',
    '/api/../../secret/secret.txt',
  ]) {
    it(`404 for ${path}`, async () => {
      const r = await rawGet(served.port, path);
      assert.equal(r.status, 404);
      assert.ok(!r.body.includes('TOP-SECRET'));
    });
  }

  it('refuses writes (405) and requests for another host name (DNS rebinding: 404)', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: served.port, path: '/api/runs', method: 'POST' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end('{}');
    });
    assert.equal(status, 405);
    assert.equal((await rawGet(served.port, '/api/runs', { Host: 'evil.example:80' })).status, 404);
    assert.equal((await rawGet(served.port, '/api/runs', { Host: `localhost:${served.port}` })).status, 200);
  });
});

describe('siamese serve: live', () => {
  it('sends a log event when a log grows, and survives a results.json replaced by garbage', async () => {
    const live = join(root, 'live-seed4');
    const events: { event: string; data: string }[] = [];
    let buf = '';
    const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: served.port, path: '/api/events' }, resolve);
      req.on('error', reject);
      req.end();
    });
    assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
    res.setEncoding('utf8');
    let wake: (() => void) | undefined;
    res.on('data', (c: string) => {
      buf += c;
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const ev = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (ev && data) events.push({ event: ev, data });
      }
      wake?.();
    });
    const waitFor = async (pred: () => boolean, what: string): Promise<void> => {
      // bounded: the poll runs every 200 ms; 100 wake-ups or 20 s, whichever first
      const deadline = Date.now() + 20_000;
      for (let n = 0; n < 100 && !pred(); n++) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, Math.max(0, deadline - Date.now()) / 10);
        });
        if (Date.now() > deadline) break;
      }
      assert.ok(pred(), `${what} (events: ${events.map((e) => e.event).join(', ')})`);
    };
    try {
      await waitFor(() => events.some((e) => e.event === 'runs'), 'the first message lists the runs');
      // the page holds the log (epochs 1 and 2); the events bring what follows
      let page = merge(undefined, await api<Chunk<EpochLine>>(`/api/log?run=0%3Alive-seed4`)) as Held<EpochLine>;
      let taken = 0;
      const grown = (): boolean => {
        for (const e of events.slice(taken)) {
          taken++;
          if (e.event !== 'log') continue;
          const m = merge(page, JSON.parse(e.data) as Chunk<EpochLine>);
          assert.notEqual(m, 'resync');
          if (typeof m !== 'string') page = m;
        }
        return page.epochs.length === 4;
      };
      // finish the partial third line and add a fourth epoch
      appendFileSync(join(live, 'log.jsonl'), JSON.stringify(epochLine(3)).slice(20) + '\n');
      appendEpoch(live, 4);
      await waitFor(grown, 'log events up to 4 epochs');
      assert.deepEqual(page.epochs, [1, 2, 3, 4].map(epochLine));
      assert.deepEqual(page.messages, []);

      // the trainer rewrites distances.jsonl whole each epoch: three clean lines now
      writeFileSync(join(live, 'distances.jsonl'), [1, 2, 3].map((e) => JSON.stringify(distanceLine(e)) + '\n').join(''));
      // (its lines differ from those read before: the whole file, with reset)
      const hist = (): Chunk<unknown> | undefined =>
        events.filter((e) => e.event === 'distances').map((e) => JSON.parse(e.data) as Chunk<unknown>).find((d) => d.epochs.length === 3);
      await waitFor(() => hist() !== undefined, 'a distances event with 3 epochs');
      const h = hist()!;
      assert.deepEqual({ id: h.id, epochs: h.epochs, messages: messagesOf(h), reset: h.reset }, { id: '0:live-seed4', epochs: [1, 2, 3].map((e) => distanceLine(e)), messages: [], reset: true });

      writeFileSync(join(root, 'cmp', 'results.json'), JSON.stringify(results).slice(0, 500));
      await waitFor(() => events.some((e) => e.event === 'results'), 'a results event');
      const r = await api<Runs>('/api/runs');
      assert.match(r.folders.find((f) => f.path.endsWith('cmp'))!.message ?? '', /not valid JSON/);
      assert.ok(r.runs.some((x) => x.path.endsWith('live-seed4')), 'the server still answers');
    } finally {
      res.destroy();
      writeFileSync(join(root, 'cmp', 'results.json'), JSON.stringify(results));
    }
  });
});
