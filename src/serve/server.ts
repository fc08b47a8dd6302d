/**
 * The read-only HTTP server of `siamese serve`: the page (a prebuilt bundle), a JSON API over
 * the served folders, and server-sent events when their files change.
 *
 * Why Node's own `http` and not fastify + @fastify/static: the server has one static bundle of
 * three fixed files (no directory serving, so no static plugin is needed to get path handling
 * right), thirteen GET routes, and one event stream, which fastify would hand back to the raw
 * response anyway (`reply.hijack()`). fastify would add about 50 packages to a tool installed for
 * training, and its main gains (schema validation, plugins, throughput under load) do not apply
 * to one local user. The only file-path surface (/files/...) goes through paths.ts, tested
 * directly with raw traversal requests.
 *
 * Routes (GET and HEAD only; every other method gets 405, every unknown path 404):
 *   /                      the page          /app.js, /app.css  its bundle (dist/web/)
 *   /api/runs              folders and runs (RunInfo rows), with the table's version (runsTable.ts)
 *   /api/log?run=ID[&at=GEN:OFFSET]   a run's epochs (a tail.ts Chunk: whole, or the lines after `at`)
 *   /api/logs?run=ID&run=ID...[&at=..&at=..]  several runs' logs in one answer (at most MAX_LOGS runs)
 *   /api/distances?run=ID[&at=GEN:OFFSET]  a run's per-epoch distance histograms (distances.jsonl), likewise
 *   /api/results?folder=ID a compare or sweep folder's results.json, or why it cannot be read
 *   /api/images?folder=ID  the test images of its t-SNE subset (base64 bytes), or why not
 *   /api/images?run=ID     the test images of a run's snapshot subset (embeddings.bin), or why not
 *   /api/snapshots         the runs that store per-epoch embeddings, with their epochs
 *   /api/snapshots?run=ID  one run's snapshot subset (test-image numbers, classes) and epochs
 *   /api/layout?run=ID&epoch=E        the 2-D map of that epoch (t-SNE, warm-started; snapshots.ts)
 *   /api/neighbours?run=ID&epoch=E&i=I[&k=10]  the k nearest points to point I in the embedding space
 *   /api/losses            the registry's losses with their default parameters
 *   /api/shape?spec=SPEC   L_pos(D), L_neg(D) of a loss spec (as in compare --losses), or {error}
 *   /api/events            server-sent events: runs (the table, first), rows (its changes), log, distances (appended lines), results
 *   /files/ROOT/PATH       a file under served folder number ROOT, read-only
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, realpathSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DataSpec } from '../data/registry.ts';
import { DataError, UsageError } from '../errors.ts';
import { DISTANCE_LINES } from './distances.ts';
import { EMBEDDINGS_FILE } from '../train/epochEmbeddings.ts';
import { type Changes, Monitor } from './monitor.ts';
import { decodePath, resolveInside } from './paths.ts';
import type { Snapshots } from './snapshots.ts';
import { RunsTable } from './runsTable.ts';
import { LOG_LINES, MAX_JSON_BYTES, readTextFile, type Root } from './scan.ts';
import { type At, parseAt, Tails } from './tail.ts';

/** where `npm run build:web` writes the page */
export const WEB_DIR = fileURLToPath(new URL('../../dist/web/', import.meta.url));
const WEB_FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};

const TYPES: Record<string, string> = {
  '.json': 'application/json; charset=utf-8',
  '.jsonl': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  // report.html is served as text: it is a file of the folder, not part of this page's origin
  '.html': 'text/plain; charset=utf-8',
};

// Everything the page loads comes from this server: the browser refuses anything else.
const SECURITY_HEADERS = {
  // style-src needs 'unsafe-inline': uPlot and the sweep set style attributes (a violation is a console error, tested)
  'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

export interface ServeOptions {
  dirs: string[];
  /** default 5173; 0 picks a free port */
  port?: number;
  /** default 127.0.0.1 */
  host?: string;
  /** server-side poll of the folders, ms (fs.watch reacts sooner where it works); default 1000 */
  pollMs?: number;
  /** the built page; default dist/web */
  webDir?: string;
  /** bytes of events a client may leave unread before it is dropped; default EVENT_BACKLOG_BYTES */
  eventBacklogBytes?: number;
}

export interface Served {
  url: string;
  port: number;
  host: string;
  close(): Promise<void>;
  /** bytes read from the runs' files so far (logs, distances, manifests, results): what a change cost */
  bytesRead(): number;
  /** test images held (per compare folder, per run): what the tests see pruned with their folders and runs */
  imageEntries(): { folders: number; runs: number };
  /** event streams open: what the tests see a client that stopped reading dropped from */
  eventClients(): number;
}

/**
 * Runs per /api/logs request: the page asks for the logs it draws in batches (a sweep's trials are
 * hundreds of runs), and one request must stay a bounded amount of reading.
 */
export const MAX_LOGS = 64;

/**
 * Events a client may leave unread (in the server's write buffer, past the kernel's) before it is
 * dropped: one that stopped reading (a suspended laptop, a stuck script) would otherwise hold
 * every later event in the server's memory. A page's EventSource reconnects and gets the whole
 * table and the lines after its own; a live page reads far faster than training writes.
 */
export const EVENT_BACKLOG_BYTES = 16 * 1024 * 1024;

const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export function isLoopback(host: string): boolean {
  return LOCAL_HOSTS.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The served roots: each must be an existing folder. */
export function resolveRoots(dirs: readonly string[]): Root[] {
  return dirs.map((given) => {
    let real: string;
    try {
      real = realpathSync(given);
    } catch {
      throw new DataError(`${given}: no such folder`);
    }
    if (!statSync(real).isDirectory()) throw new DataError(`${given}: not a folder`);
    return { given, real };
  });
}

export async function startServer(o: ServeOptions): Promise<Served> {
  const webDir = o.webDir ?? WEB_DIR;
  if (!existsSync(join(webDir, 'index.html')) || !existsSync(join(webDir, 'app.js'))) {
    throw new DataError(`the page is not built (${webDir} has no index.html/app.js): run npm run build:web`);
  }
  const roots = resolveRoots(o.dirs.length > 0 ? o.dirs : ['.']);
  const host = o.host ?? '127.0.0.1';
  const clients = new Set<ServerResponse>();

  const backlog = o.eventBacklogBytes ?? EVENT_BACKLOG_BYTES;
  /** text to every page; a page that has left too much unread is dropped */
  const send = (text: string): void => {
    for (const res of clients) {
      if (res.writableLength > backlog) {
        clients.delete(res);
        res.destroy();
      } else res.write(text);
    }
  };
  /** one event to every page, encoded once */
  const broadcast = (event: string, data: unknown): void => send(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  /** the runs table the pages hold: a snapshot on connect, then its changes (rows events) */
  /** this process: its runs table's versions and its logs' generations carry it, so a page tells a restarted server's data from the one before's */
  const boot = randomBytes(4).toString('hex');
  const table = new RunsTable(roots.map((r) => r.given), boot);
  /** what has been sent of each run's log.jsonl and distances.jsonl (tail.ts): events carry the lines appended since */
  const tails = new Tails(MAX_JSON_BYTES, boot);
  /**
   * Read a run's log (or distances) now: lines appended since the last read go to every page at
   * once, before the answer that includes them, so that every line reaches each page in order
   * whichever way it reads it.
   */
  const readLog = (r: { id: string; dir: string; root: number }, at?: At) => {
    const t = tails.read(`${r.id}\nlog`, r.id, join(r.dir, 'log.jsonl'), LOG_LINES, { at }, roots[r.root]!.real);
    if (t.changed) broadcast('log', t.changed);
    return t.answer!;
  };
  /** with `want`, the answer to a page's request (the whole file, or what follows `want.at`) */
  const readDistances = (r: { id: string; dir: string; root: number }, want?: { at: At | undefined }) => {
    const t = tails.read(`${r.id}\ndistances`, r.id, join(r.dir, 'distances.jsonl'), DISTANCE_LINES, want, roots[r.root]!.real);
    if (t.changed) broadcast('distances', t.changed);
    return t.answer;
  };
  const folderViews = () =>
    monitor.folders.map((f) => ({
      id: f.id,
      kind: monitor.resultKinds.get(f.id) ?? f.kind,
      path: f.rel === '' ? roots[f.root]!.given : `${roots[f.root]!.given}/${f.rel}`,
      results: existsSync(join(f.dir, 'results.json')),
      message: monitor.resultMessages.get(f.id) ?? null,
      ...(f.kind === 'sweep' ? { outline: monitor.outlines.get(f.id) ?? null } : {}),
    }));
  /** per compare folder: the t-SNE subset's test images, for the results.json text they were checked against */
  const images = new Map<string, { text: string; body: unknown }>();
  /** per run: its snapshot subset's test images, for the embeddings.bin header they were checked against */
  const runImages = new Map<string, { key: string; body: unknown }>();
  const onChange = (c: Changes): void => {
    // runs or folders vanished: forget their logs' records and their images (an epoch written
    // changes no set: no O(runs) work)
    if (c.set) {
      const ids = new Set(monitor.runs().map((r) => r.id));
      tails.prune((key) => ids.has(key.slice(0, key.lastIndexOf('\n'))));
      for (const id of [...runImages.keys()]) if (!monitor.run(id)) runImages.delete(id);
      const folders = new Set(monitor.folders.map((f) => f.id));
      for (const id of [...images.keys()]) if (!folders.has(id)) images.delete(id);
    }
    // the table follows every change, watched or not: a page connecting later gets its version
    const delta = c.runs ? table.update(monitor.runs(), folderViews()) : null;
    if (clients.size === 0) return;
    if (delta) broadcast('rows', delta);
    // the monitor read the changed logs (tail.ts): their appended lines, or an empty chunk for a log read first
    for (const chunk of c.logChunks) broadcast('log', chunk);
    for (const id of c.distances) {
      const r = monitor.run(id);
      if (r) readDistances(r);
    }
    for (const f of c.results) broadcast('results', { folder: f });
  };
  const monitor = new Monitor(roots, onChange, o.pollMs ?? 1000, tails);
  table.update(monitor.runs(), folderViews());
  let snapshots: Snapshots | undefined;
  const getSnapshots = async (): Promise<Snapshots> => {
    // loaded on first use: only the explorer needs it
    if (!snapshots) snapshots = new (await import('./snapshots.ts')).Snapshots();
    return snapshots;
  };
  /** a run's embeddings.bin, if it has one inside its served folder */
  const snapshotFile = (r: { root: number; rel: string }): string | null =>
    resolveInside(roots[r.root]!.real, r.rel === '' ? EMBEDDINGS_FILE : `${r.rel}/${EMBEDDINGS_FILE}`);
  /** a bad or missing part of a snapshot request is an answer with its message, as /api/results does */
  const snapshotAnswer = async (res: ServerResponse, f: () => unknown): Promise<void> => {
    try {
      return json(res, 200, { ok: true, ...(await f() as object) });
    } catch (e) {
      if (!(e instanceof DataError)) throw e;
      return json(res, 200, { ok: false, message: e.message.split('\n')[0] });
    }
  };

  const json = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };
  const notFound = (res: ServerResponse): void => {
    res.writeHead(404, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('not found\n');
  };
  const file = (req: IncomingMessage, res: ServerResponse, path: string, type: string): void => {
    let size: number;
    try {
      const st = statSync(path);
      if (!st.isFile()) return notFound(res);
      size = st.size;
    } catch {
      return notFound(res);
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': size });
    if (req.method === 'HEAD') return void res.end();
    const s = createReadStream(path);
    s.on('error', () => res.destroy());
    s.pipe(res);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...SECURITY_HEADERS, Allow: 'GET, HEAD' });
      return void res.end();
    }
    // DNS rebinding: a page of another site that resolves its name to 127.0.0.1 sends its own Host
    if (isLoopback(host)) {
      const h = (req.headers.host ?? '').replace(/:\d+$/, '');
      if (!isLoopback(h)) return notFound(res);
    }
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1));

    const web = WEB_FILES[rawPath];
    if (web) return file(req, res, join(webDir, web.file), web.type);

    if (rawPath.startsWith('/files/')) {
      // the raw (still encoded) path is split first, so an encoded "/" cannot make a new segment
      const segs = rawPath.slice('/files/'.length).split('/').map(decodePath);
      if (segs.some((s) => s === null || s.includes('/'))) return notFound(res);
      const root = roots[Number(segs[0])];
      if (!root || !/^\d+$/.test(segs[0]!)) return notFound(res);
      const p = resolveInside(root.real, segs.slice(1).join('/'));
      if (!p) return notFound(res);
      return file(req, res, p, TYPES[extname(p).toLowerCase()] ?? 'application/octet-stream');
    }

    switch (rawPath) {
      case '/api/runs': {
        const body = Buffer.from(table.snapshotText());
        res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': body.length });
        return void res.end(body);
      }
      case '/api/log': {
        const r = monitor.run(params.get('run') ?? '');
        if (!r) return notFound(res);
        return json(res, 200, readLog(r, parseAt(params.get('at'))));
      }
      case '/api/logs': {
        const given = params.getAll('run');
        const ats = params.getAll('at');
        if (ats.length > 0 && ats.length !== given.length) return json(res, 400, { error: `give one at= per run= (GEN:OFFSET, or empty for the whole log), got ${ats.length} for ${given.length}` });
        const want = new Map<string, At | undefined>();
        given.forEach((id, i) => {
          if (!want.has(id)) want.set(id, parseAt(ats[i]));
        });
        if (want.size === 0 || want.size > MAX_LOGS) return json(res, 400, { error: `give 1 to ${MAX_LOGS} runs (run=ID&run=ID...), got ${want.size}` });
        // runs that vanished meanwhile are left out: the next runs event drops them from the page
        const logs = [...want].flatMap(([id, at]) => {
          const r = monitor.run(id);
          return r ? [readLog(r, at)] : [];
        });
        return json(res, 200, { logs });
      }
      case '/api/distances': {
        const r = monitor.run(params.get('run') ?? '');
        if (!r) return notFound(res);
        return json(res, 200, readDistances(r, { at: parseAt(params.get('at')) }));
      }
      case '/api/results': {
        const f = monitor.folder(params.get('folder') ?? '');
        if (!f) return notFound(res);
        // the monitor validated this text when the file last changed (viz/validate.ts, the
        // report's own check): the page may trust every field it draws
        const text = monitor.resultTexts.get(f.id);
        if (text === undefined) return json(res, 200, { ok: false, message: monitor.resultMessages.get(f.id) ?? 'results.json does not exist (yet)' });
        const body = Buffer.from(monitor.resultKinds.get(f.id) === 'sweep' ? `{"ok":true,"kind":"sweep","sweep":${text}}` : `{"ok":true,"kind":"compare","results":${text}}`);
        res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': body.length });
        return void res.end(body);
      }
      case '/api/images': {
        if (params.has('run')) {
          const r = monitor.run(params.get('run') ?? '');
          const p = r && snapshotFile(r);
          if (!r || !p) return notFound(res);
          return snapshotAnswer(res, async () => {
            const { header } = (await getSnapshots()).index(p);
            const key = JSON.stringify([header.indices, header.labels]);
            let got = runImages.get(r.id);
            if (!got || got.key !== key) {
              const { testImages } = await import('./images.ts');
              try {
                const m = readTextFile(join(r.dir, 'manifest.json'), 'manifest.json', roots[r.root]!.real);
                if (!m.ok) throw new Error(m.message);
                const data = (JSON.parse(m.value) as { config?: { data?: DataSpec } }).config?.data;
                const s = await testImages(data, header.indices, header.labels, EMBEDDINGS_FILE);
                got = { key, body: { height: s.height, width: s.width, pixels: Buffer.from(s.pixels).toString('base64') } };
              } catch (e) {
                got = { key, body: new DataError((e as Error).message) };
              }
              if (runImages.size >= 16) runImages.delete(runImages.keys().next().value!);
              runImages.set(r.id, got);
            }
            if (got.body instanceof DataError) throw got.body;
            return got.body;
          });
        }
        const f = monitor.folder(params.get('folder') ?? '');
        if (!f) return notFound(res);
        const text = monitor.resultTexts.get(f.id);
        if (text === undefined) return json(res, 200, { ok: false, message: 'no valid results.json' });
        if (monitor.resultKinds.get(f.id) === 'sweep') return json(res, 200, { ok: false, message: 'a sweep has no t-SNE maps' });
        let got = images.get(f.id);
        if (!got || got.text !== text) {
          // once per results.json: the IDX files are read, checked and cut to the subset
          const { subsetImages } = await import('./images.ts');
          const { parseCompareResults } = await import('../viz/validate.ts');
          try {
            const s = await subsetImages(parseCompareResults(text));
            got = { text, body: { ok: true, height: s.height, width: s.width, pixels: Buffer.from(s.pixels).toString('base64') } };
          } catch (e) {
            got = { text, body: { ok: false, message: (e as Error).message } };
          }
          images.set(f.id, got);
        }
        return json(res, 200, got.body);
      }
      case '/api/snapshots': {
        const s = await getSnapshots();
        if (!params.has('run')) {
          const runs: { id: string; epochs: number[]; rows: number }[] = [];
          for (const r of monitor.runs()) {
            const ref = monitor.run(r.id);
            const p = ref && snapshotFile(ref);
            if (!p) continue;
            try {
              const idx = s.index(p);
              // a file with its header only (the run is computing epoch 0's record) has nothing to show yet
              if (idx.epochs.length > 0) runs.push({ id: r.id, epochs: idx.epochs, rows: idx.header.rows });
            } catch {
              // a damaged file: the run's own request says why
            }
          }
          return json(res, 200, { runs });
        }
        const r = monitor.run(params.get('run') ?? '');
        const p = r && snapshotFile(r);
        if (!r || !p) return notFound(res);
        return snapshotAnswer(res, () => {
          const { header, epochs } = s.index(p);
          return { rows: header.rows, dim: header.dim, epochs, indices: header.indices, labels: header.labels };
        });
      }
      case '/api/layout':
      case '/api/neighbours': {
        const r = monitor.run(params.get('run') ?? '');
        const p = r && snapshotFile(r);
        if (!r || !p) return notFound(res);
        const epoch = Number(params.get('epoch'));
        if (!Number.isInteger(epoch) || epoch < 0) return json(res, 200, { ok: false, message: `epoch must be an integer >= 0, got ${params.get('epoch')}` });
        const s = await getSnapshots();
        if (rawPath === '/api/layout') {
          return snapshotAnswer(res, async () => ({ epoch, points: Array.from(await s.layout(p, epoch), (v) => Math.round(v * 1000) / 1000) }));
        }
        const i = Number(params.get('i'));
        const k = params.has('k') ? Number(params.get('k')) : 10;
        if (!Number.isInteger(k) || k < 1 || k > 100) return json(res, 200, { ok: false, message: `k must be an integer from 1 to 100, got ${params.get('k')}` });
        return snapshotAnswer(res, () => ({ epoch, i, neighbours: s.neighbours(p, epoch, i, k) }));
      }
      case '/api/losses': {
        const { describeLosses, createLoss } = await import('../losses/registry.ts');
        const list = describeLosses().map((l) => {
          let params: Record<string, unknown> = {};
          try {
            params = { ...createLoss(l.name, l.name === 'custom' ? { pos: 'd^2', neg: 'exp(-10*d)/d' } : {}).params };
          } catch {
            // a loss that needs parameters to exist: listed without defaults
          }
          return { ...l, params };
        });
        return json(res, 200, { losses: list });
      }
      case '/api/shape': {
        const spec = params.get('spec') ?? '';
        // a bad spec is an answer, not a failed request: 200 with the message (a 4xx would also be
        // logged as an error in the page's console while the user is still typing a formula)
        if (spec.length > 1000) return json(res, 200, { error: 'loss spec too long' });
        // loaded on first use: the losses bring TF.js (about 30 MB) that the runs view never needs
        const { sampleShape } = await import('./shapes.ts');
        try {
          return json(res, 200, sampleShape(spec));
        } catch (e) {
          return json(res, 200, { error: (e as Error).message });
        }
      }
      case '/api/events': {
        res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive' });
        res.write('retry: 1000\n\n');
        res.write(`event: runs\ndata: ${table.snapshotText()}\n\n`);
        clients.add(res);
        req.on('close', () => clients.delete(res));
        return;
      }
      default:
        return notFound(res);
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      // a bug in one request must not stop the server
      if (!res.headersSent) json(res, 500, { error: (e as Error).message?.split('\n')[0] ?? 'internal error' });
      else res.destroy();
    });
  });
  // keeps idle event streams open through proxies and notices dead clients; not a page poll
  const heartbeat = setInterval(() => send(': keep-alive\n\n'), 15_000);
  heartbeat.unref();

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new UsageError(e.code === 'EADDRINUSE' ? `port ${o.port ?? 5173} is in use: choose another with --port` : `cannot listen on ${host}: ${e.code ?? e.message}`)),
      );
      server.listen(o.port ?? 5173, host, () => resolve());
    });
  } catch (e) {
    monitor.stop();
    clearInterval(heartbeat);
    throw e;
  }
  monitor.start();
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}/`,
    port,
    host,
    bytesRead: () => tails.bytesRead + monitor.bytesRead,
    imageEntries: () => ({ folders: images.size, runs: runImages.size }),
    eventClients: () => clients.size,
    close: async () => {
      monitor.stop();
      await snapshots?.close();
      clearInterval(heartbeat);
      for (const res of clients) res.end();
      clients.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
