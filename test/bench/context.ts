export interface Figure {
  suite: string;
  name: string;
  value: number;
  unit: string;
  [param: string]: string | number | boolean;
}

export interface BenchContext {
  quick: boolean;
  /** `--runs N`: repetitions, for the suites that take it (tftp-clients). */
  runs?: number;
  /** `--workers N,M`: our PE's transfer-thread counts, for the suites that take it (the tftp boot storm). */
  workers?: number[];
  /** One figure; `suite` is filled in by the runner. */
  report(figure: Omit<Figure, 'suite'>): void;
  /** Progress notes, to stderr (never mixed with --json output). */
  log(line: string): void;
}

/** Runs fn repeatedly for about `ms` milliseconds (after a warm-up) and returns calls per second. */
export function opsPerSecond(fn: () => void, ms: number, batch = 1000): number {
  const warm = performance.now() + Math.min(200, ms / 5);
  while (performance.now() < warm) for (let i = 0; i < batch; i++) fn();
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < batch; i++) fn();
    n += batch;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}
