/**
 * ASAP_ENDPOINT_UNREACHABLE counting (RFC 5352 3.5, MAX-BAD-PE-REPORT;
 * RFC 5355 5.1: reports are a denial-of-service lever). A reporter is an
 * authenticated identity or, without one, a source address: more connections
 * from one host add nothing. Each reporter is rate-limited.
 */
export interface UnreachableReportsInit {
  windowMs: number;
  /** Reports a reporter may file at once. */
  burst: number;
  /** Reports per second a reporter regains. */
  perSecond: number;
  /** Reporters remembered for rate limiting; the least recent is forgotten beyond it. */
  maxReporters: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class UnreachableReports {
  readonly #init: UnreachableReportsInit;
  readonly #reports = new Map<string, Map<string, number>>();
  readonly #buckets = new Map<string, Bucket>();

  constructor(init: UnreachableReportsInit) {
    this.#init = init;
  }

  /** Takes one report from the reporter's allowance; false: over its rate, ignore the report. */
  allow(reporter: string, now: number): boolean {
    const { burst, perSecond, maxReporters } = this.#init;
    const b = this.#buckets.get(reporter) ?? { tokens: burst, at: now };
    this.#buckets.delete(reporter);
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * perSecond);
    b.at = now;
    const ok = b.tokens >= 1;
    if (ok) b.tokens -= 1;
    this.#buckets.set(reporter, b);
    if (this.#buckets.size > maxReporters) this.#buckets.delete(this.#buckets.keys().next().value!);
    return ok;
  }

  /** Records a report and returns how many distinct reporters count now. */
  report(key: string, reporter: string, now: number): number {
    let byReporter = this.#reports.get(key);
    if (!byReporter) {
      byReporter = new Map();
      this.#reports.set(key, byReporter);
    }
    byReporter.set(reporter, now);
    for (const [r, at] of byReporter) if (now - at > this.#init.windowMs) byReporter.delete(r);
    return byReporter.size;
  }

  /** The PE re-registered, left, or answered a probe: its slate is clean. */
  reset(key: string): void {
    this.#reports.delete(key);
  }

  clear(): void {
    this.#reports.clear();
    this.#buckets.clear();
  }
}
