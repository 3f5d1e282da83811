import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import {
  createHandlespace,
  finishChecksum,
  handleWordSum,
  HandlespaceSnapshotError,
  INFINITE_LIFE,
  peChecksumTerm,
  restoreHandlespace,
  type PoolElementEntry,
  type RemoveReason,
} from '../../lib/handlespace/index.js';
import { ErrorCause, PolicyType } from '../../protocols/parameters/types.js';
import { pe } from './helpers.js';

const H = new TextEncoder().encode('tftp');

describe('handlespace', () => {
  it('handlespace - registers a PE and finds it by handle bytes or latin1 key', () => {
    const hs = createHandlespace({ clock: new ManualClock(100) });
    const r = hs.register(H, pe(7));
    expect(r.ok && r.created).toBe(true);
    expect(hs.size).toBe(1);
    expect(hs.poolCount).toBe(1);
    const e = hs.get('tftp', 7)!;
    expect(e.identifier).toBe(7);
    expect(e.expiresAt).toBe(100 + 30_000);
    expect(e.poolKey).toBe('tftp');
    expect([...e.handle]).toEqual([...H]);
    expect(hs.pool(H)?.size).toBe(1);
    expect([...hs.pools()].map((p) => p.poolKey)).toEqual(['tftp']);
  });

  it('handlespace - keeps PE identifiers above 2^31 intact', () => {
    const hs = createHandlespace();
    hs.register(H, pe(0xfedcba98));
    expect(hs.get(H, 0xfedcba98)?.identifier).toBe(0xfedcba98);
    expect(hs.deregister(H, 0xfedcba98)?.identifier).toBe(0xfedcba98);
  });

  it('handlespace - re-registration updates transport, policy values and life in place', () => {
    const clock = new ManualClock(0);
    const hs = createHandlespace({ clock });
    hs.register(H, pe(1, { type: PolicyType.LeastUsed, load: 10 }));
    clock.advance(5_000);
    const updated: PoolElementEntry[] = [];
    hs.events.on('updated', (e) => updated.push(e));
    const r = hs.register(H, { ...pe(1, { type: PolicyType.LeastUsed, load: 99 }, { port: 9000, life: 60_000 }) });
    expect(r.ok && !r.created).toBe(true);
    const e = hs.get(H, 1)!;
    expect(e.userTransport.port).toBe(9000);
    expect(e.policy).toEqual({ type: PolicyType.LeastUsed, load: 99 });
    expect(e.expiresAt).toBe(65_000);
    expect(updated).toEqual([e]);
    expect(hs.size).toBe(1);
  });

  it('handlespace - refuses a PE whose policy differs from its pool with InconsistentPoolingPolicy', () => {
    const hs = createHandlespace();
    hs.register(H, pe(1, { type: PolicyType.RoundRobin }));
    const r = hs.register(H, pe(2, { type: PolicyType.LeastUsed, load: 0 }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.cause).toBe(ErrorCause.InconsistentPoolingPolicy);
    expect(hs.has(H, 2)).toBe(false);
  });

  it('handlespace - refuses a PE whose user transport protocol differs with InconsistentTransportType', () => {
    const hs = createHandlespace();
    hs.register(H, pe(1));
    const r = hs.register(H, pe(2, undefined, { protocol: 'udp' }));
    expect(r.ok ? undefined : r.cause).toBe(ErrorCause.InconsistentTransportType);
  });

  it('handlespace - refuses an unknown policy or missing policy values with InvalidValues', () => {
    const hs = createHandlespace();
    const r1 = hs.register(H, pe(1, { type: 0x12345678, unknown: true, raw: new Uint8Array(0) }));
    expect(r1.ok ? undefined : r1.cause).toBe(ErrorCause.InvalidValues);
    const r2 = hs.register(H, pe(1, { type: PolicyType.LeastUsed } as never));
    expect(r2.ok ? undefined : r2.cause).toBe(ErrorCause.InvalidValues);
    expect(hs.size).toBe(0);
  });

  it('handlespace - lets the only PE of a pool change the pool policy', () => {
    const hs = createHandlespace();
    hs.register(H, pe(1, { type: PolicyType.RoundRobin }));
    const r = hs.register(H, pe(1, { type: PolicyType.Priority, priority: 3 }));
    expect(r.ok).toBe(true);
    expect(hs.pool(H)?.policyType).toBe(PolicyType.Priority);
    expect(hs.size).toBe(1);
  });

  it('handlespace - a pool disappears with its last PE', () => {
    const hs = createHandlespace();
    hs.register(H, pe(1));
    hs.register(H, pe(2));
    hs.deregister(H, 1);
    expect(hs.poolCount).toBe(1);
    const removed: [number, RemoveReason][] = [];
    hs.events.on('removed', (e, why) => removed.push([e.identifier, why]));
    hs.deregister(H, 2);
    expect(hs.poolCount).toBe(0);
    expect(hs.pool(H)).toBeUndefined();
    expect(hs.resolve(H)).toEqual([]);
    expect(removed).toEqual([[2, 'deregistered']]);
    expect(hs.deregister(H, 2)).toBeUndefined();
  });

  it('handlespace - expires a PE whose lifetime ran out, by the clock timer, in expiry order', () => {
    const clock = new ManualClock(0);
    const hs = createHandlespace({ clock });
    hs.register(H, pe(1, undefined, { life: 3_000 }));
    hs.register(H, pe(2, undefined, { life: 1_000 }));
    hs.register(H, pe(3, undefined, { life: INFINITE_LIFE }));
    const expired: number[] = [];
    hs.events.on('removed', (e, why) => {
      if (why === 'expired') expired.push(e.identifier);
    });
    clock.advance(999);
    expect(hs.size).toBe(3);
    clock.advance(1);
    expect(expired).toEqual([2]);
    clock.advance(5_000);
    expect(expired).toEqual([2, 1]);
    expect(hs.get(H, 3)?.expiresAt).toBe(Infinity);
    expect(hs.nextExpiry()).toBe(Infinity);
  });

  it('handlespace - re-registration before expiry keeps the PE', () => {
    const clock = new ManualClock(0);
    const hs = createHandlespace({ clock });
    hs.register(H, pe(1, undefined, { life: 1_000 }));
    clock.advance(900);
    hs.register(H, pe(1, undefined, { life: 1_000 }));
    clock.advance(900);
    expect(hs.has(H, 1)).toBe(true);
    clock.advance(100);
    expect(hs.has(H, 1)).toBe(false);
  });

  it('handlespace - expire(now) removes and returns what is due without a timer', () => {
    const clock = new ManualClock(0);
    const hs = createHandlespace({ clock, autoExpire: false });
    for (let i = 1; i <= 5; i++) hs.register(H, pe(i, undefined, { life: i * 100 }));
    expect(clock.pending).toBe(0);
    expect(hs.expire(250).map((e) => e.identifier)).toEqual([1, 2]);
    expect(hs.size).toBe(3);
    expect(hs.nextExpiry()).toBe(300);
  });

  it('handlespace - keeps an incremental checksum per owner equal to one computed from scratch', () => {
    const hs = createHandlespace();
    const handles = ['a', 'bc', 'def'].map((s) => new TextEncoder().encode(s));
    for (let i = 0; i < 30; i++) hs.register(handles[i % 3]!, pe(i * 7919, undefined, { owner: 1 + (i % 2) }));
    hs.deregister(handles[0]!, 0);
    for (const owner of [1, 2]) {
      const sum = hs.owned(owner).reduce((s, e) => s + peChecksumTerm(handleWordSum(e.handle), e.identifier), 0);
      expect(hs.checksum(owner)).toBe(finishChecksum(sum));
    }
    expect(hs.checksum(99)).toBe(0xffff);
  });

  it('handlespace - takeover moves every PE of a registrar and its checksum at once', () => {
    const hs = createHandlespace();
    for (let i = 0; i < 10; i++) hs.register(H, pe(i, undefined, { owner: i < 6 ? 1 : 2 }));
    const c1 = hs.checksum(1);
    const c2 = hs.checksum(2);
    let moved: readonly PoolElementEntry[] = [];
    hs.events.on('takeover', (from, to, entries) => {
      expect([from, to]).toEqual([1, 2]);
      moved = entries;
    });
    expect(hs.takeover(1, 2)).toBe(6);
    expect(moved.length).toBe(6);
    expect(hs.ownedCount(1)).toBe(0);
    expect(hs.ownedCount(2)).toBe(10);
    expect(hs.checksum(1)).toBe(0xffff);
    expect(hs.get(H, 0)?.homeRegistrarId).toBe(2);
    // merged one's-complement sums: ~(~c1 + ~c2) with end-around carry
    let s = (~c1 & 0xffff) + (~c2 & 0xffff);
    s = (s & 0xffff) + (s >>> 16);
    expect(hs.checksum(2)).toBe(~s & 0xffff);
    expect(hs.owners()).toEqual([2]);
  });

  it('handlespace - re-registration through another registrar moves ownership', () => {
    const hs = createHandlespace();
    hs.register(H, pe(1, undefined, { owner: 1 }));
    hs.register(H, pe(1), { ownerId: 5 });
    expect(hs.ownedCount(1)).toBe(0);
    expect(hs.owned(5).map((e) => e.identifier)).toEqual([1]);
  });

  it('handlespace - snapshot and restore round-trip every PE with its remaining life', () => {
    const clock = new ManualClock(1_000);
    const hs = createHandlespace({ clock });
    hs.register(H, pe(1, { type: PolicyType.LeastUsed, load: 5 }, { life: 10_000, owner: 3 }));
    hs.register(H, { ...pe(2, { type: PolicyType.LeastUsed, load: 7 }), asapTransport: pe(2).userTransport });
    hs.register('other', pe(3, { type: PolicyType.WeightedRandom, weight: 4 }, { life: INFINITE_LIFE }));
    clock.advance(4_000);
    const bytes = hs.snapshot();
    const clock2 = new ManualClock(50_000);
    const back = restoreHandlespace(bytes, { clock: clock2 });
    expect(back.size).toBe(3);
    expect(back.poolCount).toBe(2);
    const e1 = back.get(H, 1)!;
    expect(e1.expiresAt).toBe(50_000 + 6_000);
    expect(e1.homeRegistrarId).toBe(3);
    expect(e1.policy).toEqual({ type: PolicyType.LeastUsed, load: 5 });
    expect(back.get(H, 2)?.asapTransport).toEqual(pe(2).userTransport);
    expect(back.get('other', 3)?.expiresAt).toBe(Infinity);
    for (const o of [1, 3]) expect(back.checksum(o)).toBe(hs.checksum(o));
    expect(back.snapshot()).toEqual(restoreHandlespace(back.snapshot(), { clock: clock2 }).snapshot());
  });

  it('handlespace - restore refuses bytes that are not a snapshot with a typed error', () => {
    expect(() => restoreHandlespace(new Uint8Array([0xff, 0x00]))).toThrow(HandlespaceSnapshotError);
    try {
      restoreHandlespace(new Uint8Array([0xa0]));
    } catch (err) {
      expect((err as HandlespaceSnapshotError).code).toBe('RSP_ERR_BAD_SNAPSHOT');
    }
  });

  it('handlespace - close() stops the expiry timer', () => {
    const clock = new ManualClock(0);
    const hs = createHandlespace({ clock });
    hs.register(H, pe(1, undefined, { life: 10 }));
    hs.close();
    clock.advance(100);
    expect(hs.size).toBe(1);
    expect(hs.expire().length).toBe(1);
  });
});
