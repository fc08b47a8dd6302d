import { join } from 'node:path';
import { RunDir } from '../train/runDir.ts';

/**
 * The default run directory of `train`: `<root>/<name>`, or, when that already holds a run,
 * the first free `<root>/<name>-2`, `-3`, ... The seed overwrote its weights on every run; a
 * numbered folder keeps the earlier run and still lets the same command run again (and
 * `predict`, which takes the newest run, then reads the new one). An explicit --out is never
 * renumbered: naming a folder that holds a run is refused by the trainer.
 */
export function freeRunDir(root: string, name: string, note: (message: string) => void = () => {}): string {
  const first = join(root, name);
  if (!new RunDir(first).exists('manifest')) return first;
  let n = 2;
  while (new RunDir(join(root, `${name}-${n}`)).exists('manifest')) n++;
  const out = join(root, `${name}-${n}`);
  const held = describeRun(first);
  note(`${first} holds ${held}; training into ${out} (choose the folder with --out${held.startsWith('a finished') ? '' : `, or continue the earlier run with: siamese train --resume ${first}`})`);
  return out;
}

function describeRun(dir: string): string {
  try {
    const m = new RunDir(dir).readManifest();
    if (m.status === 'finished') return 'a finished run';
    return `an unfinished run (${m.status}, ${m.epochsDone} of ${m.config.epochs} epochs)`;
  } catch {
    return 'a run';
  }
}
