// Runs the CLI in this process and then prints its peak resident memory, for the report's
// memory tests (test/viz/reportLimits.test.ts): node --import tsx test/viz/reportChild.ts report DIR
import { main } from '../../src/cli/main.ts';

await main(process.argv.slice(2));
// resourceUsage().maxRSS is in kilobytes
process.stderr.write(`maxrss_kb=${process.resourceUsage().maxRSS}\n`);
