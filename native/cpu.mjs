// What native/build.mjs and the loader (src/engine/native.ts) both need to agree on: which CPU an
// addon built with -march=native is for, and which sources it was built from.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The native sources (native/src). */
export const NATIVE_SRC = join(dirname(fileURLToPath(import.meta.url)), 'src');

/**
 * A fingerprint of the CPU's instruction set: on Linux a hash of the sorted flags of
 * /proc/cpuinfo (two CPUs with the same flags run the same -march=native code), elsewhere the
 * model name.
 */
export function cpuFingerprint() {
  try {
    const flags = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => /^(flags|Features)\s*:/.test(l));
    if (flags) {
      const list = flags.split(':')[1].trim().split(/\s+/).sort().join(' ');
      return createHash('sha256').update(list).digest('hex').slice(0, 16);
    }
  } catch {
    // not Linux
  }
  return cpus()[0]?.model ?? 'unknown';
}

/** A short hash of the native sources: a cached addon built from other sources is not reused. */
export function sourceHash() {
  const h = createHash('sha256');
  for (const f of readdirSync(NATIVE_SRC).sort()) h.update(f).update('\0').update(readFileSync(join(NATIVE_SRC, f))).update('\0');
  return h.digest('hex').slice(0, 12);
}

/**
 * The folder name that identifies an addon in the cache: the package version, the platform, the
 * CPU and the sources (e.g. 0.1.0-linux-x64-720c146e15a5744c-3f2a9b0c1d2e).
 */
export function cacheKey(version) {
  const cpu = cpuFingerprint().replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 40);
  return `${version}-${process.platform}-${process.arch}-${cpu}-${sourceHash()}`;
}
