/**
 * The source's import graph has no cycle: neither between files nor between the folders of src/
 * (data → model/losses → engine → train → eval → experiments → viz/report → cli; a file at the top of
 * src/ counts as a folder of its own). The graph is the one the compiled code runs: esbuild parses
 * every file and keeps the imports that survive type erasure (with verbatimModuleSyntax, an
 * `import { type X }` still loads its module), static and dynamic.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { build } from 'esbuild';
import { REPO_ROOT } from '../helpers.ts';

type Graph = Map<string, Set<string>>;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** file → the files it imports (src-relative paths), as esbuild resolves them. */
async function importGraph(dynamic: boolean): Promise<Graph> {
  const src = join(REPO_ROOT, 'src');
  const r = await build({
    entryPoints: sourceFiles(src),
    bundle: true,
    write: false,
    metafile: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    outdir: join(REPO_ROOT, 'scratch', 'import-graph'),
    logLevel: 'silent',
    absWorkingDir: REPO_ROOT,
  });
  const g: Graph = new Map();
  const rel = (p: string) => relative('src', p);
  for (const [file, input] of Object.entries(r.metafile.inputs)) {
    if (!file.startsWith('src/')) continue;
    const deps = new Set<string>();
    for (const imp of input.imports) {
      if (imp.external || !imp.path.startsWith('src/')) continue;
      if (!dynamic && imp.kind === 'dynamic-import') continue;
      deps.add(rel(imp.path));
    }
    g.set(rel(file), deps);
  }
  return g;
}

/** The strongly connected components with more than one node, or a node importing itself (Tarjan). */
function cycles(g: Graph): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || g.get(v)?.has(v)) out.push(scc.sort());
    }
  };
  for (const v of [...g.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

/** The graph between src/'s folders (a top-level file is its own node), each edge with an example. */
function folderGraph(g: Graph): { graph: Graph; why: Map<string, string> } {
  const folder = (f: string) => (f.includes('/') ? f.split('/')[0]! + '/' : f);
  const graph: Graph = new Map();
  const why = new Map<string, string>();
  for (const [f, deps] of g) {
    const a = folder(f);
    if (!graph.has(a)) graph.set(a, new Set());
    for (const d of deps) {
      const b = folder(d);
      if (a === b) continue;
      graph.get(a)!.add(b);
      if (!why.has(`${a} ${b}`)) why.set(`${a} ${b}`, `${f} → ${d}`);
    }
  }
  return { graph, why };
}

test('the cycle finder finds cycles (a → b → c → a, d → d) and nothing in a tree', () => {
  const g: Graph = new Map([
    ['a', new Set(['b'])],
    ['b', new Set(['c'])],
    ['c', new Set(['a', 'e'])],
    ['d', new Set(['d'])],
    ['e', new Set()],
  ]);
  assert.deepEqual(cycles(g), [['a', 'b', 'c'], ['d']]);
  assert.deepEqual(cycles(new Map([['a', new Set(['b', 'c'])], ['b', new Set(['c'])], ['c', new Set()]])), []);
});

test('no import cycle between the files of src/ (static and dynamic imports)', async () => {
  const g = await importGraph(true);
  // the parse saw the code: the entry point imports the engine's selection through the trainer
  assert.ok(g.size > 50, `only ${g.size} files parsed`);
  assert.ok(g.get('train/trainer.ts')?.has('engine/select.ts'), 'trainer.ts → engine/select.ts missing from the graph');
  assert.deepEqual(cycles(g), []);
});

test('no import cycle between the folders of src/ (networks as data in model/, kernels in engine/)', async () => {
  const { graph, why } = folderGraph(await importGraph(true));
  const found = cycles(graph);
  const explain = found.map((c) => c.flatMap((a) => c.filter((b) => why.has(`${a} ${b}`)).map((b) => why.get(`${a} ${b}`)!)).join('; '));
  assert.deepEqual(explain, []);
  assert.ok(graph.get('engine/')?.has('model/'), 'the engine runs the networks model/ describes');
  assert.ok(!graph.get('model/')?.has('engine/'), 'model/ must not import engine/');
});
