/**
 * Transfer progress for people: a bar redrawn in place on a terminal, plain
 * lines (at most one a second) when the output is a file or a pipe, so logs
 * and tests read them line by line.
 */
import type { TransferProgress } from '../tftp/client/index.js';
import { describeTarget } from '../tftp/client/download.js';

interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

function formatRate(bytesPerSecond: number): string {
  return `${(bytesPerSecond / 1e6).toFixed(1)} MB/s`;
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}

function peText(p: TransferProgress): string {
  const pe = p.pe;
  if (!pe) return 'finding a PE';
  return pe.identifier !== undefined ? `PE 0x${(pe.identifier >>> 0).toString(16).padStart(8, '0')}` : describeTarget(pe);
}

/** One line, no bar: "12.0 MiB of 100 MiB (12%)  85.3 MB/s  ETA 0:01  PE 0x..". */
export function progressText(p: TransferProgress): string {
  const amount =
    p.total !== undefined && p.total > 0
      ? `${formatBytes(p.bytes)} of ${formatBytes(p.total)} (${Math.floor((p.bytes / p.total) * 100)}%)`
      : formatBytes(p.bytes);
  const eta = p.etaMs !== undefined ? `  ETA ${formatDuration(p.etaMs)}` : '';
  return `${amount}  ${formatRate(p.bytesPerSecond)}${eta}  ${peText(p)}`;
}

export class ProgressReporter {
  readonly #out: ProgressOutput;
  readonly #tty: boolean;
  readonly #label: string;
  readonly #lineEveryMs: number;
  #lastLineAt = Number.NEGATIVE_INFINITY;
  #barShown = false;

  constructor(out: ProgressOutput, opts: { label: string; tty?: boolean; lineEveryMs?: number }) {
    this.#out = out;
    this.#tty = opts.tty ?? out.isTTY === true;
    this.#label = opts.label;
    this.#lineEveryMs = opts.lineEveryMs ?? 1_000;
  }

  update(p: TransferProgress): void {
    if (this.#tty) {
      this.#out.write(`\r${this.#bar(p)}\x1b[K`);
      this.#barShown = true;
      return;
    }
    if (p.elapsedMs - this.#lastLineAt < this.#lineEveryMs) return;
    this.#lastLineAt = p.elapsedMs;
    this.#out.write(`progress: ${progressText(p)}\n`);
  }

  /** A line of its own (a failover, the summary), clear of the bar. */
  line(text: string): void {
    if (this.#barShown) {
      this.#out.write('\r\x1b[K');
      this.#barShown = false;
    }
    this.#out.write(`${text}\n`);
  }

  /** Leaves the terminal on a fresh line. */
  end(): void {
    if (this.#barShown) this.#out.write('\n');
    this.#barShown = false;
  }

  #bar(p: TransferProgress): string {
    const text = progressText(p);
    const cols = this.#out.columns ?? 80;
    const room = cols - text.length - this.#label.length - 6;
    if (p.total === undefined || p.total <= 0 || room < 10) return `${this.#label} ${text}`.slice(0, cols - 1);
    const width = Math.min(40, room);
    const done = Math.min(width, Math.floor((p.bytes / p.total) * width));
    return `${this.#label} [${'#'.repeat(done)}${'.'.repeat(width - done)}] ${text}`;
  }
}
