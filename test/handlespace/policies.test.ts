import { describe, expect, it } from 'vitest';
import { createHandlespace, createSeededRandom, type Handlespace } from '../../lib/handlespace/index.js';
import { LOAD_MAX, PolicyType, type MemberSelectionPolicy } from '../../protocols/parameters/types.js';
import { CHI2_P001, chiSquare, pe } from './helpers.js';

const H = 'pool';

function poolOf(policies: MemberSelectionPolicy[], seed = 1): Handlespace {
  const hs = createHandlespace({ random: createSeededRandom(seed), autoExpire: false });
  policies.forEach((p, i) => {
    const r = hs.register(H, pe(i + 1, p));
    if (!r.ok) throw new Error(r.reason);
  });
  return hs;
}

const ids = (hs: Handlespace, items = 3, extra = {}) => hs.resolve(H, { items, ...extra }).map((e) => e.identifier);
const firstOf = (hs: Handlespace, n: number, extra = {}) => Array.from({ length: n }, () => ids(hs, 1, extra)[0]);

function counts(hs: Handlespace, n: number, pes: number, items = 1): number[] {
  const c = new Array<number>(pes).fill(0);
  for (let i = 0; i < n; i++) for (const id of ids(hs, items)) c[id - 1]!++;
  return c;
}

describe('policies', () => {
  it('round robin - returns PEs in turn, the next answer starting one further on', () => {
    const hs = poolOf(Array.from({ length: 4 }, () => ({ type: PolicyType.RoundRobin })));
    expect(ids(hs)).toEqual([1, 2, 3]);
    expect(ids(hs)).toEqual([2, 3, 4]);
    expect(ids(hs)).toEqual([3, 4, 1]);
    expect(ids(hs)).toEqual([4, 1, 2]);
    expect(firstOf(hs, 5)).toEqual([1, 2, 3, 4, 1]);
  });

  it('round robin - maxIncrement advances by the number of PEs used', () => {
    const hs = poolOf(Array.from({ length: 5 }, () => ({ type: PolicyType.RoundRobin })));
    expect(ids(hs, 2, { maxIncrement: 2 })).toEqual([1, 2]);
    expect(ids(hs, 2, { maxIncrement: 2 })).toEqual([3, 4]);
    expect(ids(hs, 2, { maxIncrement: 2 })).toEqual([5, 1]);
  });

  it('resolve - returns at most items distinct PEs, capped at 128', () => {
    const hs = poolOf(Array.from({ length: 200 }, () => ({ type: PolicyType.Random })));
    const r = ids(hs, 500);
    expect(r.length).toBe(128);
    expect(new Set(r).size).toBe(128);
    const small = poolOf([{ type: PolicyType.RoundRobin }, { type: PolicyType.RoundRobin }]);
    expect(ids(small, 3)).toEqual([1, 2]);
    expect(ids(small, 0)).toEqual([]);
  });

  it('weighted round robin - chooses each PE weight times per round', () => {
    const hs = poolOf([1, 2, 3].map((weight) => ({ type: PolicyType.WeightedRoundRobin, weight })));
    expect(firstOf(hs, 12)).toEqual([1, 2, 2, 3, 3, 3, 1, 2, 2, 3, 3, 3]);
  });

  it('priority - chooses the highest priority, round robin among equal priorities', () => {
    const hs = poolOf([1, 5, 5, 2].map((priority) => ({ type: PolicyType.Priority, priority })));
    expect(ids(hs, 4)).toEqual([2, 3, 4, 1]);
    expect(firstOf(hs, 4)).toEqual([3, 2, 3, 2]);
  });

  it('least used - chooses the minimum load, round robin among equal loads (RFC 5356)', () => {
    const loads = [50, 10, 10, 30, 10];
    const hs = poolOf(loads.map((load) => ({ type: PolicyType.LeastUsed, load })));
    expect(ids(hs, 5)).toEqual([2, 3, 5, 4, 1]);
    expect(firstOf(hs, 6)).toEqual([3, 5, 2, 3, 5, 2]);
  });

  it('least used - a re-registration with a new load reorders the pool', () => {
    const hs = poolOf([10, 20, 30].map((load) => ({ type: PolicyType.LeastUsed, load })));
    hs.register(H, pe(1, { type: PolicyType.LeastUsed, load: 40 }));
    expect(ids(hs)).toEqual([2, 3, 1]);
    hs.register(H, pe(3, { type: PolicyType.LeastUsed, load: 0 }));
    expect(ids(hs)).toEqual([3, 2, 1]);
  });

  it('least used with degradation - adds the degradation to each chosen PE until it re-registers', () => {
    const d = 100;
    const hs = poolOf([
      { type: PolicyType.LeastUsedDegradation, load: 1000, loadDegradation: d },
      { type: PolicyType.LeastUsedDegradation, load: 1150, loadDegradation: d },
    ]);
    // PE 1: 1000 -> 1100 -> 1200; PE 2 (1150) wins once PE 1 passes it
    expect(firstOf(hs, 4)).toEqual([1, 1, 2, 1]);
    expect(hs.get(H, 1)?.degradation).toBe(3 * d);
    hs.register(H, pe(1, { type: PolicyType.LeastUsedDegradation, load: 1000, loadDegradation: d }));
    expect(hs.get(H, 1)?.degradation).toBe(0);
    expect(firstOf(hs, 1)).toEqual([1]);
  });

  it('priority least used - ranks by load + load degradation without changing them', () => {
    const hs = poolOf([
      { type: PolicyType.PriorityLeastUsed, load: 100, loadDegradation: 500 },
      { type: PolicyType.PriorityLeastUsed, load: 300, loadDegradation: 100 },
    ]);
    expect(firstOf(hs, 3)).toEqual([2, 2, 2]);
  });

  it('priority least used with degradation - ranks by load + load degradation + accumulated degradation', () => {
    const hs = poolOf([
      { type: PolicyType.PriorityLeastUsedDegradation, load: 100, loadDegradation: 100 },
      { type: PolicyType.PriorityLeastUsedDegradation, load: 250, loadDegradation: 100 },
    ]);
    // 200 vs 350, then 300 vs 350, then 400 vs 350
    expect(firstOf(hs, 3)).toEqual([1, 1, 2]);
  });

  it('least used with DPF - a stored distance penalises a PE', () => {
    const penalty = Math.round(LOAD_MAX / 1000); // 0.1 % of full load per unit of distance
    const hs = poolOf([
      { type: PolicyType.LeastUsedDpf, load: 1000, loadDpf: penalty, distance: 10 },
      { type: PolicyType.LeastUsedDpf, load: 2000, loadDpf: penalty, distance: 0 },
    ]);
    expect(ids(hs, 2)).toEqual([2, 1]);
  });

  it('least used with DPF - a distance given at resolution overrides the stored one', () => {
    const penalty = Math.round(LOAD_MAX / 1000);
    const hs = poolOf([
      { type: PolicyType.LeastUsedDpf, load: 1000, loadDpf: penalty, distance: 10 },
      { type: PolicyType.LeastUsedDpf, load: 2000, loadDpf: penalty, distance: 0 },
    ]);
    expect(ids(hs, 2, { distanceOf: (e: { identifier: number }) => (e.identifier === 1 ? 0 : 50) })).toEqual([1, 2]);
  });

  it('least connections - chooses the PE with the fewest sessions; weighted divides by weight', () => {
    const lc = poolOf([5, 2, 9].map((connections) => ({ type: PolicyType.LeastConnections, connections })));
    expect(ids(lc)).toEqual([2, 1, 3]);
    const wlc = poolOf([
      { type: PolicyType.WeightedLeastConnections, weight: 1, connections: 5 },
      { type: PolicyType.WeightedLeastConnections, weight: 4, connections: 8 },
    ]);
    expect(ids(wlc)).toEqual([2, 1]);
  });

  it('random - every PE equally likely (chi-square, p = 0.001)', () => {
    const hs = poolOf(
      Array.from({ length: 5 }, () => ({ type: PolicyType.Random })),
      42,
    );
    const c = counts(hs, 20_000, 5);
    expect(chiSquare(c, [0.2, 0.2, 0.2, 0.2, 0.2])).toBeLessThan(CHI2_P001[4]!);
  });

  it('weighted random - weights 1:2:7 give 10/20/70 % (chi-square, p = 0.001)', () => {
    const hs = poolOf(
      [1, 2, 7].map((weight) => ({ type: PolicyType.WeightedRandom, weight })),
      7,
    );
    const c = counts(hs, 30_000, 3);
    expect(chiSquare(c, [0.1, 0.2, 0.7])).toBeLessThan(CHI2_P001[2]!);
  });

  it('weighted random - keeps its distribution after PEs leave and weights change', () => {
    const hs = poolOf(
      [5, 1, 2, 9, 7].map((weight) => ({ type: PolicyType.WeightedRandom, weight })),
      9,
    );
    hs.deregister(H, 1);
    hs.deregister(H, 4);
    hs.register(H, pe(5, { type: PolicyType.WeightedRandom, weight: 7 * 1 }));
    hs.register(H, pe(3, { type: PolicyType.WeightedRandom, weight: 2 }));
    // left: 2 (w1), 3 (w2), 5 (w7)
    const c = counts(hs, 30_000, 5);
    expect(c[0]).toBe(0);
    expect(c[3]).toBe(0);
    expect(chiSquare([c[1]!, c[2]!, c[4]!], [0.1, 0.2, 0.7])).toBeLessThan(CHI2_P001[2]!);
  });

  it('weighted random - the second item follows the weights of the PEs left (chi-square, p = 0.001)', () => {
    const hs = poolOf(
      [1, 2, 7].map((weight) => ({ type: PolicyType.WeightedRandom, weight })),
      21,
    );
    const pairs = ['1,2', '1,3', '2,1', '2,3', '3,1', '3,2'];
    const expected = [0.1 * (2 / 9), 0.1 * (7 / 9), 0.2 * (1 / 8), 0.2 * (7 / 8), 0.7 * (1 / 3), 0.7 * (2 / 3)];
    const c = new Array<number>(6).fill(0);
    for (let i = 0; i < 30_000; i++) c[pairs.indexOf(ids(hs, 2).join(','))]!++;
    expect(chiSquare(c, expected)).toBeLessThan(CHI2_P001[5]!);
  });

  it('weighted random - returns distinct PEs in one answer', () => {
    const hs = poolOf(
      [1, 1000, 1].map((weight) => ({ type: PolicyType.WeightedRandom, weight })),
      3,
    );
    for (let i = 0; i < 100; i++) expect(new Set(ids(hs, 3)).size).toBe(3);
  });

  it('randomized least used - chooses in proportion to the free load', () => {
    const loads = [0.9, 0.6, 0.0].map((f) => Math.round(f * LOAD_MAX));
    const hs = poolOf(
      loads.map((load) => ({ type: PolicyType.RandomizedLeastUsed, load })),
      5,
    );
    const c = counts(hs, 30_000, 3);
    expect(chiSquare(c, [0.1 / 1.5, 0.4 / 1.5, 1 / 1.5])).toBeLessThan(CHI2_P001[2]!);
  });

  it('weighted random with DPF - distance reduces the share', () => {
    const half = Math.round(0xffffffff / 20); // 5 % per unit of distance
    const hs = poolOf(
      [0, 10].map((distance) => ({ type: PolicyType.WeightedRandomDpf, weight: 1000, weightDpf: half, distance })),
      11,
    );
    // weights 1000 and 1000 - 1000 * 10 * 0.05 = 500
    const c = counts(hs, 30_000, 2);
    expect(chiSquare(c, [2 / 3, 1 / 3])).toBeLessThan(CHI2_P001[1]!);
  });

  it('weighted response time - share proportional to weight / response time', () => {
    const hs = poolOf(
      [
        { weight: 1, responseTimeUs: 1000 },
        { weight: 1, responseTimeUs: 250 },
        { weight: 2, responseTimeUs: 1000 },
      ].map((x) => ({ type: PolicyType.WeightedResponseTime, ...x })),
      13,
    );
    const c = counts(hs, 30_000, 3);
    expect(chiSquare(c, [1 / 7, 4 / 7, 2 / 7])).toBeLessThan(CHI2_P001[2]!);
  });

  it('consistent hash - the same client key always gets the same PE', () => {
    const hs = poolOf(Array.from({ length: 10 }, () => ({ type: PolicyType.ConsistentHash, weight: 1 })));
    for (let k = 0; k < 100; k++) {
      const a = ids(hs, 3, { clientKey: `client-${k}` });
      expect(ids(hs, 3, { clientKey: `client-${k}` })).toEqual(a);
      expect(new Set(a).size).toBe(3);
    }
  });

  it('consistent hash - removing one PE moves only its own keys', () => {
    const hs = poolOf(Array.from({ length: 10 }, () => ({ type: PolicyType.ConsistentHash, weight: 1 })));
    const keys = Array.from({ length: 2_000 }, (_, k) => `client-${k}`);
    const before = keys.map((k) => ids(hs, 1, { clientKey: k })[0]);
    hs.deregister(H, 4);
    const after = keys.map((k) => ids(hs, 1, { clientKey: k })[0]);
    let moved = 0;
    keys.forEach((_, i) => {
      if (before[i] !== 4) expect(after[i]).toBe(before[i]);
      else moved++;
    });
    expect(moved).toBeGreaterThan(50);
    hs.register(H, pe(4, { type: PolicyType.ConsistentHash, weight: 1 }));
    expect(keys.map((k) => ids(hs, 1, { clientKey: k })[0])).toEqual(before);
  });

  it('consistent hash - adding an unrelated PE only takes keys onto the new PE', () => {
    const hs = poolOf(Array.from({ length: 8 }, () => ({ type: PolicyType.ConsistentHash, weight: 1 })));
    const keys = Array.from({ length: 2_000 }, (_, k) => `k${k}`);
    const before = keys.map((k) => ids(hs, 1, { clientKey: k })[0]);
    hs.register(H, pe(99, { type: PolicyType.ConsistentHash, weight: 1 }));
    keys.forEach((k, i) => {
      const now = ids(hs, 1, { clientKey: k })[0];
      if (now !== 99) expect(now).toBe(before[i]);
    });
  });

  it('consistent hash - spreads keys roughly evenly over equal-weight PEs', () => {
    const hs = poolOf(Array.from({ length: 4 }, () => ({ type: PolicyType.ConsistentHash, weight: 1 })));
    const c = [0, 0, 0, 0];
    for (let k = 0; k < 4_000; k++) c[ids(hs, 1, { clientKey: `u${k}` })[0]! - 1]!++;
    for (const x of c) expect(x).toBeGreaterThan(500);
  });
  it('least used - any item count returns the lowest loads in order, ties by least recent use', () => {
    const rnd = createSeededRandom(17);
    // few distinct loads: many ties, so the order also depends on the use sequence
    const loads = Array.from({ length: 40 }, () => Math.floor(rnd() * 6));
    const hs = poolOf(loads.map((load) => ({ type: PolicyType.LeastUsed, load })));
    const lastUse = loads.map((_, i) => i); // registration order counts as the first use
    let clock = loads.length;
    for (let round = 0; round < 200; round++) {
      const items = 1 + (round % 7);
      const order = loads
        .map((load, i) => ({ id: i + 1, load, at: lastUse[i]! }))
        .sort((a, b) => a.load - b.load || a.at - b.at)
        .map((x) => x.id);
      const got = ids(hs, items);
      expect(got).toEqual(order.slice(0, items));
      lastUse[got[0]! - 1] = clock++; // maxIncrement 1: only the first counts as used
    }
  });

  it('weighted random - follows a weight change made after many resolutions (chi-square, p = 0.001)', () => {
    const hs = poolOf(
      [1, 2, 7].map((weight) => ({ type: PolicyType.WeightedRandom, weight })),
      23,
    );
    expect(chiSquare(counts(hs, 30_000, 3), [0.1, 0.2, 0.7])).toBeLessThan(CHI2_P001[2]!);
    hs.register(H, pe(3, { type: PolicyType.WeightedRandom, weight: 1 }));
    expect(chiSquare(counts(hs, 30_000, 3), [0.25, 0.5, 0.25])).toBeLessThan(CHI2_P001[2]!);
    hs.register(H, pe(2, { type: PolicyType.WeightedRandom, weight: 0 }));
    const c = counts(hs, 30_000, 3);
    expect(c[1]).toBe(0);
    expect(chiSquare([c[0]!, c[2]!], [0.5, 0.5])).toBeLessThan(CHI2_P001[1]!);
    hs.deregister(H, 1);
    hs.register(H, pe(4, { type: PolicyType.WeightedRandom, weight: 3 }));
    const d = counts(hs, 30_000, 4);
    expect(d[0]).toBe(0);
    expect(d[1]).toBe(0);
    expect(chiSquare([d[2]!, d[3]!], [0.25, 0.75])).toBeLessThan(CHI2_P001[1]!);
  });

  it('weighted random - a large pool never returns a zero weight and shares out by weight (chi-square, p = 0.001)', () => {
    const weights = Array.from({ length: 200 }, (_, i) => (i % 4 === 0 ? 0 : 1 + (i % 9)));
    const hs = poolOf(
      weights.map((weight) => ({ type: PolicyType.WeightedRandom, weight })),
      29,
    );
    const c = counts(hs, 30_000, 200);
    const group = (w: number) => (w <= 3 ? 0 : w <= 6 ? 1 : 2);
    const observed = [0, 0, 0];
    const share = [0, 0, 0];
    weights.forEach((w, i) => {
      if (w === 0) expect(c[i]).toBe(0);
      else {
        observed[group(w)]! += c[i]!;
        share[group(w)]! += w;
      }
    });
    const total = share.reduce((x, y) => x + y, 0);
    expect(
      chiSquare(
        observed,
        share.map((x) => x / total),
      ),
    ).toBeLessThan(CHI2_P001[2]!);
  });
});
