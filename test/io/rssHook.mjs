// Preloaded (node --import) into a child process by test/io/child.ts: on exit, the process's peak
// resident set in kB goes to $SIAMESE_RSS_FILE. Linux's VmHWM (per address space, so it starts
// afresh at exec, and counts every thread, workers included); getrusage's maxrss elsewhere, which
// on Linux would also count the parent's memory at fork time.
import { readFileSync, writeFileSync } from 'node:fs';

function peakKb() {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]);
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS;
}

const file = process.env.SIAMESE_RSS_FILE;
if (file) process.on('exit', () => writeFileSync(file, String(peakKb())));
