/**
 * A new project that depends on siamese-lab as a user's would: the repository's files (tracked and
 * new, as a clone would have them after a commit) copied to a temporary folder, packed there with
 * `npm pack` (which builds dist/ through `prepare`), and the tarball installed into another
 * temporary folder from npm's cache, without the registry. Install scripts are not run, as npm 11
 * does not run a dependency's until the user approves it: the package must find its native engine
 * by itself (built on first use into SIAMESE_CACHE_DIR).
 */
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { REPO_ROOT } from '../helpers.ts';

export interface PackedProject {
  /** the copy of the repository that was packed */
  clone: string;
  tarball: string;
  /** files in the tarball, package-relative */
  files: string[];
  /** packed size in bytes */
  size: number;
  /** the dependent project (node_modules/siamese-lab installed from the tarball) */
  dir: string;
  cleanup(): void;
}

function npm(args: string[], cwd: string): string {
  // npm's own script: the same npm as `npm test` runs under, found next to this node
  return execFileSync(process.execPath, [npmCli(), ...args], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
}

function npmCli(): string {
  const fromEnv = process.env['npm_execpath'];
  if (fromEnv && /npm-cli\.js$/.test(fromEnv)) return fromEnv;
  return join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
}

function devVersion(pkg: string): string {
  return (JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
}

export function packAndInstall(): PackedProject {
  const root = mkdtempSync(join(tmpdir(), 'siamese-package-'));
  const clone = join(root, 'clone');
  const dir = join(root, 'project');
  const packs = join(root, 'packs');
  mkdirSync(packs);
  mkdirSync(dir);
  // the files a commit would hold (tracked, and new ones git does not ignore)
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO_ROOT, encoding: 'utf8' })
    .split('\0')
    .filter((f) => f !== '' && f !== 'node_modules');
  for (const f of listed) {
    const to = join(clone, f);
    mkdirSync(dirname(to), { recursive: true });
    try {
      copyFileSync(join(REPO_ROOT, f), to);
    } catch {
      // listed but deleted in the working tree
    }
  }
  // the clone's npm ci: the repository's installed packages
  symlinkSync(realpathSync(join(REPO_ROOT, 'node_modules')), join(clone, 'node_modules'), 'dir');
  // (prepare's own lines may precede the JSON)
  const out = npm(['pack', '--json', '--pack-destination', packs], clone);
  const packed = JSON.parse(out.slice(out.search(/^\[/m))) as { filename: string; size: number; files: { path: string }[] }[];
  const info = packed[0]!;
  const tarball = join(packs, info.filename);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'uses-siamese-lab', version: '1.0.0', private: true, type: 'module' }, null, 2) + '\n');
  const deps = [tarball, `tsx@${devVersion('tsx')}`, `@types/node@${devVersion('@types/node')}`];
  const flags = ['--ignore-scripts', '--no-audit', '--no-fund', '--no-save'];
  try {
    npm(['install', '--offline', ...flags, ...deps], dir);
  } catch {
    // something not in the cache: let npm fetch what is missing
    npm(['install', '--prefer-offline', ...flags, ...deps], dir);
  }
  return {
    clone,
    tarball,
    files: info.files.map((f) => f.path),
    size: info.size,
    dir,
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** node with args in the project, an environment of its own (no test-runner context). */
export function node(p: PackedProject, args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 300_000): Ran {
  const e: NodeJS.ProcessEnv = { ...process.env, CI: 'true', ...env };
  delete e['NODE_TEST_CONTEXT'];
  delete e['NODE_OPTIONS'];
  const r: SpawnSyncReturns<string> = spawnSync(process.execPath, args, { cwd: p.dir, encoding: 'utf8', env: e, timeout: timeoutMs });
  // a run past the limit comes back with code null (and its signal); anything else is the test's fault
  if (r.error && (r.error as NodeJS.ErrnoException).code !== 'ETIMEDOUT') throw new Error(`node ${args.join(' ')}: ${r.error.message}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The installed CLI, as `npx siamese` runs it. */
export function siamese(p: PackedProject, args: string[], env: Record<string, string | undefined> = {}): Ran {
  return node(p, [join(p.dir, 'node_modules', '.bin', 'siamese'), ...args], env);
}
