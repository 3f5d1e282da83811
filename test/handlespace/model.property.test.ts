import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ManualClock } from '../../lib/clock.js';
import {
  createHandlespace,
  createSeededRandom,
  finishChecksum,
  handleWordSum,
  INFINITE_LIFE,
  peChecksumTerm,
  restoreHandlespace,
  type Handlespace,
} from '../../lib/handlespace/index.js';
import { PolicyType, type MemberSelectionPolicy } from '../../protocols/parameters/types.js';
import { pe } from './helpers.js';

const POOLS = ['a', 'bb', 'ccc'];
const POLICIES: MemberSelectionPolicy[][] = [
  [{ type: PolicyType.RoundRobin }, { type: PolicyType.Random }],
  [
    { type: PolicyType.LeastUsed, load: 5 },
    { type: PolicyType.LeastUsed, load: 1 },
    { type: PolicyType.WeightedRandom, weight: 3 },
  ],
  [
    { type: PolicyType.WeightedRandom, weight: 2 },
    { type: PolicyType.WeightedRandom, weight: 0 },
    { type: PolicyType.ConsistentHash, weight: 2 },
    { type: PolicyType.LeastUsedDegradation, load: 9, loadDegradation: 4 },
  ],
];

type Op =
  | { op: 'register'; pool: number; id: number; owner: number; life: number; policy: number }
  | { op: 'deregister'; pool: number; id: number }
  | { op: 'advance'; ms: number }
  | { op: 'takeover'; from: number; to: number }
  | { op: 'resolve'; pool: number; items: number }
  | { op: 'restore' };

const ID = fc.constantFrom(1, 2, 3, 4, 5, 0x80000001, 0xffffffff);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('register' as const),
      pool: fc.nat(2),
      id: ID,
      owner: fc.integer({ min: 1, max: 3 }),
      life: fc.oneof(fc.integer({ min: 1, max: 3000 }), fc.constant(INFINITE_LIFE)),
      policy: fc.nat(3),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('deregister' as const), pool: fc.nat(2), id: ID }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 1500 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('takeover' as const),
      from: fc.integer({ min: 1, max: 3 }),
      to: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('resolve' as const), pool: fc.nat(2), items: fc.integer({ min: 1, max: 6 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'restore' as const }) },
);

interface ModelPe {
  pool: number;
  id: number;
  owner: number;
  expiresAt: number;
  policyType: number;
}

function check(hs: Handlespace, model: Map<string, ModelPe>): void {
  expect(hs.size).toBe(model.size);
  const perPool = [0, 0, 0];
  for (const m of model.values()) perPool[m.pool]!++;
  expect(hs.poolCount).toBe(perPool.filter((n) => n > 0).length);
  POOLS.forEach((h, p) => {
    expect(hs.pool(h)?.size ?? 0).toBe(perPool[p]);
    expect(
      hs
        .poolElements(h)
        .map((e) => e.identifier)
        .sort((a, b) => a - b),
    ).toEqual(
      [...model.values()]
        .filter((m) => m.pool === p)
        .map((m) => m.id)
        .sort((a, b) => a - b),
    );
  });
  for (const owner of [1, 2, 3]) {
    const mine = [...model.values()].filter((m) => m.owner === owner);
    expect(
      hs
        .owned(owner)
        .map((e) => `${e.poolKey}/${e.identifier}`)
        .sort(),
    ).toEqual(mine.map((m) => `${POOLS[m.pool]}/${m.id}`).sort());
    const sum = mine.reduce((s, m) => s + peChecksumTerm(handleWordSum(new TextEncoder().encode(POOLS[m.pool])), m.id), 0);
    expect(hs.checksum(owner)).toBe(finishChecksum(sum));
  }
  for (const m of model.values()) {
    const e = hs.get(POOLS[m.pool]!, m.id)!;
    expect(e.homeRegistrarId).toBe(m.owner);
    expect(e.expiresAt).toBe(m.expiresAt);
  }
  const next = Math.min(Infinity, ...[...model.values()].map((m) => m.expiresAt));
  expect(hs.nextExpiry()).toBe(next);
}

describe('handlespace model', () => {
  it('handlespace - every index agrees with a brute-force model after any operation sequence', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        const clock = new ManualClock(0);
        let hs = createHandlespace({ clock, random: createSeededRandom(1) });
        const model = new Map<string, ModelPe>();
        const expiredAt: number[] = [];
        const listen = (h: Handlespace) =>
          h.events.on('removed', (e, why) => {
            if (why === 'expired') expiredAt.push(e.expiresAt);
          });
        listen(hs);
        for (const o of ops) {
          switch (o.op) {
            case 'register': {
              const policy = POLICIES[o.pool]![o.policy % POLICIES[o.pool]!.length]!;
              const key = `${o.pool}/${o.id}`;
              const members = [...model.values()].filter((m) => m.pool === o.pool);
              const poolType = members[0]?.policyType;
              const sole = members.length === 1 && model.has(key);
              const allowed = poolType === undefined || poolType === policy.type || sole;
              const r = hs.register(POOLS[o.pool]!, pe(o.id, policy, { owner: o.owner, life: o.life }));
              expect(r.ok).toBe(allowed);
              if (allowed) {
                model.set(key, {
                  pool: o.pool,
                  id: o.id,
                  owner: o.owner,
                  expiresAt: o.life === INFINITE_LIFE ? Infinity : clock.now() + o.life,
                  policyType: policy.type,
                });
              }
              break;
            }
            case 'deregister': {
              const key = `${o.pool}/${o.id}`;
              expect(hs.deregister(POOLS[o.pool]!, o.id) !== undefined).toBe(model.has(key));
              model.delete(key);
              break;
            }
            case 'advance': {
              const before = expiredAt.length;
              clock.advance(o.ms);
              for (const [k, m] of model) if (m.expiresAt <= clock.now()) model.delete(k);
              const fresh = expiredAt.slice(before);
              expect(fresh).toEqual([...fresh].sort((a, b) => a - b));
              break;
            }
            case 'takeover': {
              hs.takeover(o.from, o.to);
              if (o.from !== o.to) for (const m of model.values()) if (m.owner === o.from) m.owner = o.to;
              break;
            }
            case 'resolve': {
              const got = hs.resolve(POOLS[o.pool]!, { items: o.items, clientKey: 'k' });
              const size = [...model.values()].filter((m) => m.pool === o.pool).length;
              const zeroWeight = [...model.values()].some((m) => m.pool === o.pool && m.policyType === PolicyType.WeightedRandom);
              if (!zeroWeight) expect(got.length).toBe(Math.min(o.items, size));
              else expect(got.length).toBeLessThanOrEqual(Math.min(o.items, size));
              expect(new Set(got).size).toBe(got.length);
              for (const e of got) expect(model.has(`${POOLS.indexOf(e.poolKey)}/${e.identifier}`)).toBe(true);
              break;
            }
            case 'restore': {
              hs.close();
              hs = restoreHandlespace(hs.snapshot(), { clock, random: createSeededRandom(2) });
              listen(hs);
              break;
            }
          }
          check(hs, model);
        }
        hs.close();
      }),
      { numRuns: 300, seed: 0x5eed },
    );
  });
});
