/**
 * The seed's own command line (`python main.py --train=True --loss=potential --epcs=20 --bs=128
 * --opt=RMSprop --reset_weights=True`), translated to siamese-lab's, so its users can switch 1:1.
 */
const RENAMES: Record<string, string> = {
  '--epcs': '--epochs',
  '--bs': '--batch-size',
  '--opt': '--optimizer',
  '--reset_weights': '--reset-weights',
};

const isTrue = (v: string): boolean => /^(true|1|yes)$/i.test(v);

export function translateSeedArgs(argv: readonly string[]): string[] {
  const out: string[] = [];
  let command: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    let name = eq > 0 ? arg.slice(0, eq) : arg;
    let value = eq > 0 ? arg.slice(eq + 1) : undefined;
    if (name === '--train') {
      // --train=True trains, --train=False predicts (the seed's switch)
      if (value === undefined && i + 1 < argv.length && /^(true|false)$/i.test(argv[i + 1]!)) value = argv[++i];
      command = value === undefined || isTrue(value) ? 'train' : 'predict';
      continue;
    }
    if (name === '--reset_weights' || name === '--reset-weights') {
      if (value === undefined && i + 1 < argv.length && /^(true|false)$/i.test(argv[i + 1]!)) value = argv[++i];
      if (value === undefined || isTrue(value)) out.push('--reset-weights');
      continue;
    }
    name = RENAMES[name] ?? name;
    out.push(value === undefined ? name : `${name}=${value}`);
  }
  if (command === undefined) return out;
  // predict takes no training options: drop the ones the seed passes anyway
  if (command === 'predict') return ['predict', ...out.filter((a) => !a.startsWith('--reset-weights'))];
  return [command, ...out];
}
