/**
 * BullMQ's own Lua scripts, for the two places the queue runs one inside a script of its own (the
 * coordinator's withdraw, the worker's lock-checked progress): BullMQ exports no way to do that,
 * so the text is read from the package, whose layout is no public API. Read on first use, not at
 * import (the library's entry loads both modules), and checked against the inputs the caller
 * passes, so that a BullMQ release that moves or changes a script costs the queue only, refused
 * in one line.
 */
import { createRequire } from 'node:module';
import { DataError } from '../../errors.ts';

/**
 * The text of BullMQ's script `name`, which must take `keys` keys and list `inputs` in its header
 * (DataError naming the installed version and `who` runs it otherwise).
 */
export function bullmqScript(name: string, keys: number, inputs: readonly string[], who: string): string {
  const require = createRequire(import.meta.url);
  let script: { content?: unknown; keys?: unknown } | undefined;
  let version = 'of unknown version';
  try {
    version = String((require('bullmq/package.json') as { version?: unknown }).version);
    // the scripts' index names each script by its name; the file's own name carries its key count
    script = (require('bullmq/dist/cjs/scripts/index.js') as Record<string, typeof script>)[name];
  } catch {
    script = undefined;
  }
  const content = script?.content;
  if (typeof content !== 'string' || script?.keys !== keys || !inputs.every((l) => content.includes(l))) {
    throw new DataError(`the installed bullmq ${version} has no ${name} script taking ${inputs.join(', ')}, which ${who} runs; install the bullmq version siamese-lab's package.json names`);
  }
  return content;
}
