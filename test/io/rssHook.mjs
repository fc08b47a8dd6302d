// Preloaded (node --import) into a child process by test/io/child.ts: on exit, the process's peak
// resident set (getrusage maxrss, all threads, workers included) goes to $SIAMESE_RSS_FILE in kB.
import { writeFileSync } from 'node:fs';

const file = process.env.SIAMESE_RSS_FILE;
if (file) process.on('exit', () => writeFileSync(file, String(process.resourceUsage().maxRSS)));
