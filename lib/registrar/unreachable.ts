/** ASAP_ENDPOINT_UNREACHABLE counting (RFC 5352 3.5, MAX-BAD-PE-REPORT): distinct reporters within a window. */
export class UnreachableReports {
  readonly #windowMs: number;
  readonly #reports = new Map<string, Map<string, number>>();

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /** Records a report and returns how many distinct reporters count now. */
  report(key: string, reporter: string, now: number): number {
    let byReporter = this.#reports.get(key);
    if (!byReporter) {
      byReporter = new Map();
      this.#reports.set(key, byReporter);
    }
    byReporter.set(reporter, now);
    for (const [r, at] of byReporter) if (now - at > this.#windowMs) byReporter.delete(r);
    return byReporter.size;
  }

  /** The PE re-registered or left: its slate is clean. */
  reset(key: string): void {
    this.#reports.delete(key);
  }

  /** A reporter went away: its reports stay valid until the window ends (they were true when made). */
  clear(): void {
    this.#reports.clear();
  }
}
