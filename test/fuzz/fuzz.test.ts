import { beforeAll, describe, expect, it } from 'vitest';
import { DecodeError, DecodeErrorCode } from '../../protocols/errors.js';
import { codecTarget, runFuzz, toHex } from './fuzz.js';
import type { FuzzReport, FuzzTarget } from './fuzz.js';

describe('fuzz - short campaign over every decoder', () => {
  let report: FuzzReport;
  beforeAll(() => {
    report = runFuzz({ count: 20_000, seed: 0x5eed_2024 });
  });

  it('finds no failure', () => {
    expect(report.failures).toEqual([]);
  });

  it('splits the inputs evenly across asap, enrp, tftp and the framer', () => {
    expect(report.targets.map((t) => [t.target, t.count])).toEqual([
      ['asap', 5000],
      ['enrp', 5000],
      ['tftp', 5000],
      ['framer', 5000],
    ]);
    expect(report.count).toBe(20_000);
  });

  it('reaches both outcomes, decoded and DecodeError, in every decoder', () => {
    for (const t of report.targets) {
      expect(t.decoded, `${t.target} decoded`).toBeGreaterThan(0);
      expect(t.refused, `${t.target} refused`).toBeGreaterThan(0);
      expect(t.decoded + t.refused + t.failures).toBe(t.count);
    }
  });

  it('gives the same outcomes for the same seed', () => {
    const strip = (r: FuzzReport) => r.targets.map(({ slowestMs: _s, ...rest }) => rest);
    expect(strip(runFuzz({ count: 2000, seed: 7 }))).toEqual(strip(runFuzz({ count: 2000, seed: 7 })));
  });
});

// A toy codec: one length byte, then that many bytes; a first byte above 0x80 is refused.
const toyDecode = (b: Uint8Array): number[] => {
  if (b.length === 0) throw new DecodeError(DecodeErrorCode.Truncated, 'empty', { offset: 0 });
  if (b[0]! > 0x80) throw new DecodeError(DecodeErrorCode.BadValue, 'high', { offset: 0 });
  return Array.from(b);
};
const toyEncode = (v: number[]): Uint8Array => Uint8Array.from(v);
const toyCorpus = [Uint8Array.of(1, 2, 3, 4), Uint8Array.of(0x10, 0x20), Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 8)];

function toy(name: string, decode = toyDecode, encode = toyEncode): FuzzTarget {
  return codecTarget(name, toyCorpus, decode, encode, { fixLength: true });
}

describe('fuzz - the harness reports what it must', () => {
  it('reports an exception that is not a DecodeError, with an input that replays it', () => {
    const buggy = (b: Uint8Array): number[] => {
      if (b.length > 4 && b[1] === 0xff) throw new TypeError('boom');
      return toyDecode(b);
    };
    const report = runFuzz({ count: 5000, seed: 1, targets: [toy('buggy', buggy)], maxFailures: 3 });
    expect(report.failures.length).toBe(3);
    for (const f of report.failures) {
      expect(f).toMatchObject({ seed: 1, target: 'buggy', kind: 'exception' });
      expect(f.error).toContain('TypeError: boom');
      expect(() => buggy(Uint8Array.from(Buffer.from(f.hex, 'hex')))).toThrow(TypeError);
    }
  });

  it('replays one input by seed, target and index', () => {
    const seen: string[] = [];
    const base = toy('rec');
    const rec: FuzzTarget = { ...base, run: (input, rng) => (seen.push(toHex(input)), base.run(input, rng)) };
    // No hang retries: a run stalled by a loaded machine would be recorded twice.
    runFuzz({ count: 50, seed: 99, targets: [rec], hangMs: 60_000 });
    const campaign = [...seen];
    seen.length = 0;
    runFuzz({ count: 1, seed: 99, index: 17, targets: [rec], hangMs: 60_000 });
    expect(campaign.length).toBe(50);
    expect(seen).toEqual([campaign[17]]);
  });

  it('reports a re-encoding that is not stable as a round-trip failure', () => {
    const growing = (v: number[]): Uint8Array => Uint8Array.from([...v, 0]);
    const report = runFuzz({ count: 200, seed: 2, targets: [toy('growing', toyDecode, growing)], maxFailures: 1 });
    expect(report.failures).toMatchObject([{ target: 'growing', kind: 'round-trip' }]);
  });

  it('reports a re-encoding that throws as a round-trip failure', () => {
    const picky = (v: number[]): Uint8Array => {
      if (v.length > 6) throw new RangeError('too long');
      return toyEncode(v);
    };
    const report = runFuzz({ count: 500, seed: 3, targets: [toy('picky', toyDecode, picky)], maxFailures: 1 });
    expect(report.failures).toMatchObject([{ target: 'picky', kind: 'round-trip' }]);
    expect(report.failures[0]!.error).toContain('RangeError: too long');
  });

  it('reports a decode slower than the limit on two tries as a hang, and forgives a single stall', () => {
    let clock = 0;
    const stalledOnce = new Set<string>();
    const slow = (b: Uint8Array): number[] => {
      if (b.length > 200)
        clock += 80; // always slow: a hang
      else if (b.length === 8 && !stalledOnce.has(toHex(b))) {
        stalledOnce.add(toHex(b)); // slow once: a GC pause, say
        clock += 80;
      }
      return toyDecode(b);
    };
    const report = runFuzz({ count: 3000, seed: 4, targets: [toy('slow', slow)], now: () => clock, hangMs: 50, maxFailures: 100 });
    expect(stalledOnce.size).toBeGreaterThan(0);
    expect(report.failures.length).toBeGreaterThan(0);
    for (const f of report.failures) {
      expect(f.kind).toBe('hang');
      expect(f.hex.length / 2).toBeGreaterThan(200);
    }
  });
});
