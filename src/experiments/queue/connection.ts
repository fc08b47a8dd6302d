/**
 * `--queue redis://[:password@]host:port[/db]` (or `rediss://` for TLS): parsed into the options
 * BullMQ's ioredis connections take, and a form safe to print (the password never appears in
 * logs, manifests or results).
 */
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'bullmq';
import { UsageError } from '../../errors.ts';

export interface QueueUrl {
  /** the URL with its password replaced by *** */
  display: string;
  connection: ConnectionOptions;
}

/** Key prefix of every BullMQ key siamese-lab writes (queues, checkpoints, the grid registry). */
export const KEY_PREFIX = 'siamese';

export function parseQueueUrl(text: string): QueueUrl {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--queue: "${redactText(text)}" is not a URL; expected redis://[:password@]host:port[/db] or rediss://...`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new UsageError(`--queue: ${url.protocol.replace(/:$/, '')} is not a Redis URL; expected redis:// or rediss:// (TLS)`);
  }
  if (url.hostname === '') throw new UsageError('--queue: the URL names no host');
  const port = url.port === '' ? 6379 : Number(url.port);
  const dbText = url.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0 || db > 15 || !/^\d*$/.test(dbText)) throw new UsageError(`--queue: the database must be 0-15, got "${dbText}"`);
  const password = url.password === '' ? undefined : decodeURIComponent(url.password);
  const username = url.username === '' ? undefined : decodeURIComponent(url.username);
  const host = url.hostname.replace(/^\[|\]$/g, ''); // [::1] -> ::1
  const connection: ConnectionOptions = {
    host,
    port,
    db,
    ...(password !== undefined ? { password } : {}),
    ...(username !== undefined ? { username } : {}),
    // TLS checks the server's certificate against Node's CAs (add one with NODE_EXTRA_CA_CERTS);
    // a server name is sent for host names only (TLS forbids IP addresses there)
    ...(url.protocol === 'rediss:' ? { tls: isIP(host) ? {} : { servername: host } } : {}),
    // BullMQ's blocking commands need ioredis to retry forever instead of failing a command
    maxRetriesPerRequest: null,
    // reconnect with a capped back-off: a restarted Redis is picked up within a second or two
    retryStrategy: (times: number) => Math.min(200 * times, 2000),
  };
  return { display: redactText(text), connection };
}

/** A Redis URL with any password replaced by ***. */
export function redactText(text: string): string {
  return text.replace(/^(rediss?:\/\/)([^@/]*)@/i, (_m, scheme: string, cred: string) => {
    const colon = cred.indexOf(':');
    return `${scheme}${colon < 0 ? '***' : `${cred.slice(0, colon)}:***`}@`;
  });
}
