/**
 * A real redis-server (Debian's) for the queue tests: on a free loopback port, no persistence
 * unless asked, its own folder; stopped by the test. Restartable on the same port.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServer {
  port: number;
  url: string;
  stop(): Promise<void>;
  /** stop and start again on the same port; without persistence it comes back empty */
  restart(): Promise<void>;
}


export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

// servers die with the test process, even when it is killed by the runner's timeout
const servers = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of servers) p.kill('SIGKILL');
});

export async function startRedis(opts: { password?: string; persist?: boolean; tls?: boolean } = {}): Promise<RedisServer & { ca?: string }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'siamese-redis-'));
  // TLS: a throw-away CA and a certificate for 127.0.0.1 made with openssl; clients trust the CA
  // through NODE_EXTRA_CA_CERTS, as a user would
  const ca = opts.tls ? makeCertificates(dir) : undefined;
  let proc: ChildProcess | undefined;
  const listen = ca
    ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', join(dir, 'server.pem'), '--tls-key-file', join(dir, 'server.key'), '--tls-ca-cert-file', ca, '--tls-auth-clients', 'no']
    : ['--port', String(port)];
  const args = [
    ...listen, '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', opts.persist ? 'yes' : 'no', '--appendfsync', 'always',
    ...(opts.password ? ['--requirepass', opts.password] : []),
  ];
  const up = async (): Promise<void> => {
    proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const p = proc;
    servers.add(p);
    p.once('exit', () => servers.delete(p));
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const t = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 10_000);
      proc!.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        if (/Ready to accept connections/.test(out)) {
          clearTimeout(t);
          resolve();
        }
      });
      proc!.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`redis-server exited with ${code}: ${out}`));
      });
    });
    proc.stdout!.resume();
  };
  const down = async (): Promise<void> => {
    const p = proc;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  };
  await up();
  const auth = opts.password ? `:${encodeURIComponent(opts.password)}@` : '';
  return {
    port,
    url: `${ca ? 'rediss' : 'redis'}://${auth}127.0.0.1:${port}`,
    ...(ca ? { ca } : {}),
    async stop() {
      await down();
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await down();
      await up();
    },
  };
}

function makeCertificates(dir: string): string {
  const run = (args: string[]): void => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
  };
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=siamese-lab test CA']);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf']);
  return join(dir, 'ca.pem');
}
