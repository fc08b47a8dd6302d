import { UsageError } from '../errors.ts';
import { isLoopback, type Served, startServer } from '../serve/server.ts';

export interface ServeCommandOptions {
  dirs: string[];
  port?: number;
  host?: string;
}

/**
 * `siamese serve [DIR ...]`: serve the page over the folders until Ctrl-C. Prints the URL on
 * stdout (one line, so scripts can read it) and a warning on stderr when the host is not local.
 */
export async function serveCommand(o: ServeCommandOptions): Promise<Served> {
  const host = o.host ?? '127.0.0.1';
  if (host.trim() === '') throw new UsageError('--host must not be empty');
  if (o.port !== undefined && o.port > 65535) throw new UsageError(`--port must be an integer in 0..65535, got ${o.port}`);
  const served = await startServer({ dirs: o.dirs, port: o.port ?? 5173, host });
  if (!isLoopback(host)) {
    process.stderr.write(`siamese: warning: serving on ${host}: anyone who can reach this address can read the served folders\n`);
  }
  process.stdout.write(`siamese serve: ${served.url}  (${o.dirs.length > 0 ? o.dirs.join(', ') : '.'}; Ctrl-C stops)\n`);
  const stop = (): void => {
    void served.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return served;
}
