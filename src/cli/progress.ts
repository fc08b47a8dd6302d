import cliProgress from 'cli-progress';
import type { BatchInfo, EpochLog } from '../train/trainer.ts';

/**
 * Training progress: a live bar (epoch, batch, loss, pairs/s, ETA) on a TTY; on anything else
 * (CI, a log file) only one summary line per epoch.
 */
export class TrainProgress {
  private bar: cliProgress.SingleBar | null = null;
  private readonly tty: boolean;
  private lastEpoch = 0;

  constructor(
    private readonly label: string,
    private readonly epochs: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = Boolean(stream.isTTY) && !process.env['CI'];
  }

  batch(info: BatchInfo): void {
    if (!this.tty) return;
    if (!this.bar || info.epoch !== this.lastEpoch) {
      this.bar?.stop();
      this.lastEpoch = info.epoch;
      this.bar = new cliProgress.SingleBar(
        {
          stream: this.stream,
          format: `${this.label} epoch ${info.epoch}/${this.epochs} {bar} {value}/{total} batches | loss {loss} | {pps} pairs/s | ETA {eta_formatted}`,
          hideCursor: true,
          clearOnComplete: true,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(info.batches, 0, { loss: '-', pps: '-' });
    }
    if (info.batch % 8 === 0 || info.batch === info.batches) {
      this.bar.update(info.batch, { loss: info.loss.toFixed(4), pps: Math.round(info.pairsPerSecond) });
    }
  }

  epoch(log: EpochLog): void {
    this.bar?.stop();
    this.bar = null;
    this.stream.write(`${this.label} ${formatEpoch(log, this.epochs)}\n`);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}

export function formatEpoch(log: EpochLog, epochs: number): string {
  return (
    `epoch ${log.epoch}/${epochs}: loss ${log.loss.toFixed(4)}, train acc ${(100 * log.trainAccuracy).toFixed(2)}%, ` +
    `test acc ${(100 * log.testAccuracy).toFixed(2)}%, ${log.seconds.toFixed(1)} s, ${Math.round(log.pairsPerSecond)} pairs/s` +
    (log.minedPerBatch !== undefined ? `, ${log.minedPerBatch.toFixed(1)} mined/batch` : '')
  );
}
