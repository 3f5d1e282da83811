import { describe, expect, it } from 'vitest';
import { RttEstimator } from '../../lib/rtt.js';

describe('RttEstimator (RFC 6298 section 2)', () => {
  it('takes the first sample as SRTT with RTTVAR half of it, then smooths by 1/8 and 1/4', () => {
    const r = new RttEstimator();
    expect(r.measured).toBe(false);
    r.sample(100);
    expect([r.measured, r.srtt, r.rttvar, r.rto]).toEqual([true, 100, 50, 300]);
    r.sample(20);
    // RTTVAR = 3/4 * 50 + 1/4 * |100 - 20| = 57.5; SRTT = 7/8 * 100 + 1/8 * 20 = 90.
    expect([r.srtt, r.rttvar, r.rto]).toEqual([90, 57.5, 320]);
  });

  it('applies the clock granularity when 4 RTTVAR is below it, and ignores negative samples', () => {
    const r = new RttEstimator(5);
    r.sample(1);
    r.sample(1);
    r.sample(1);
    expect(r.rto).toBeCloseTo(1 + 5, 9);
    r.sample(-40);
    expect(r.srtt).toBeCloseTo(1, 9);
  });
});
