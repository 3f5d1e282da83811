/**
 * The round-trip estimate of RFC 6298 section 2 (SRTT, RTTVAR and RTO from
 * samples). Which packets may be timed (Karn's rule) is the caller's to say.
 */
export class RttEstimator {
  #measured = false;
  #srtt = 0;
  #rttvar = 0;

  /** `granularityMs`: the clock granularity G of RTO = SRTT + max(G, 4 RTTVAR). */
  constructor(private readonly granularityMs = 0) {}

  /** Whether a sample has been taken. */
  get measured(): boolean {
    return this.#measured;
  }
  /** Smoothed round trip, ms (0 before the first sample). */
  get srtt(): number {
    return this.#srtt;
  }
  get rttvar(): number {
    return this.#rttvar;
  }
  /** SRTT + max(G, 4 RTTVAR), unbounded: callers clamp it to their own floor and limit. */
  get rto(): number {
    return this.#srtt + Math.max(this.granularityMs, 4 * this.#rttvar);
  }

  /** One round trip of `ms` (negative samples, from a clock step, are ignored). */
  sample(ms: number): void {
    if (ms < 0) return;
    if (!this.#measured) {
      this.#measured = true;
      this.#srtt = ms;
      this.#rttvar = ms / 2;
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - ms);
      this.#srtt = 0.875 * this.#srtt + 0.125 * ms;
    }
  }
}
