/**
 * The seed's own command line (`python main.py --train=True --loss=potential --epcs=20 --bs=128
 * --opt=RMSprop --reset_weights=True`), translated to siamese-lab's, so its users can switch 1:1.
 */
import { UsageError } from '../errors.ts';

const RENAMES: Record<string, string> = {
  '--epcs': '--epochs',
  '--bs': '--batch-size',
  '--opt': '--optimizer',
  '--reset_weights': '--reset-weights',
};

const TRUE = /^(true|1|yes)$/i;
const BOOLEAN = /^(true|false|1|0|yes|no)$/i;

/** the seed's switch value: a typo must not quietly mean False (--train=Ture would predict) */
function isTrue(name: string, v: string): boolean {
  if (!BOOLEAN.test(v)) throw new UsageError(`${name}=${v}: give True or False`);
  return TRUE.test(v);
}

/**
 * `--name=value` stays one argument: commander reads that form for every long option. The seed's
 * predict (`--train=False`) parsed its training flags too and ignored them; so does this one, for
 * the seed's own spellings only (a modern --epochs given to predict is still an error). Its
 * `--loss=NAME` picks the newest run of that loss (predict --loss).
 */
export function translateSeedArgs(argv: readonly string[]): string[] {
  const out: string[] = [];
  const seedTrainingOnly = new Set<number>(); // indices in out
  let command: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    let value = eq > 0 ? arg.slice(eq + 1) : undefined;
    if (name === '--train') {
      // --train=True trains, --train=False predicts (the seed's switch)
      if (value === undefined && i + 1 < argv.length && BOOLEAN.test(argv[i + 1]!)) value = argv[++i];
      command = value === undefined || isTrue(name, value) ? 'train' : 'predict';
      continue;
    }
    if (name === '--reset_weights' || name === '--reset-weights') {
      if (value === undefined && i + 1 < argv.length && BOOLEAN.test(argv[i + 1]!)) value = argv[++i];
      if (value === undefined || isTrue(name, value)) {
        if (name === '--reset_weights') seedTrainingOnly.add(out.length);
        out.push('--reset-weights');
      }
      continue;
    }
    const renamed = RENAMES[name];
    if (renamed === undefined) {
      out.push(arg);
      continue;
    }
    seedTrainingOnly.add(out.length);
    out.push(value === undefined ? renamed : `${renamed}=${value}`);
    // the value as a separate argument ("--epcs 3") belongs to the same flag
    if (value === undefined && i + 1 < argv.length && !argv[i + 1]!.startsWith('-')) {
      seedTrainingOnly.add(out.length);
      out.push(argv[++i]!);
    }
  }
  if (command === undefined) return out;
  if (command === 'predict') return ['predict', ...out.filter((_, i) => !seedTrainingOnly.has(i))];
  return [command, ...out];
}
