/**
 * The policy table: for each policy type, the values it must carry and the
 * selector that serves a pool of it.
 *
 * - round robin: cursor over the member array (round-robin.ts)
 * - random: Floyd sample of the member array (random.ts)
 * - weighted random family (Fenwick tree, plus an alias table while the
 *   weights stay put): weighted random, randomized least used (weight
 *   LOAD_MAX - load, as RSPLIB), weighted random DPF, weighted response time
 *   (weight / response time)
 * - ordered family (binary heap by (k1, k2, seq), keys in an Int32Array): weighted round robin,
 *   priority, least used and its degradation / priority / DPF variants, least
 *   connections, weighted least connections
 * - consistent hash: ring of virtual nodes (consistent-hash.ts)
 */
import { LOAD_MAX, PolicyType } from '../../../protocols/parameters/types.js';
import type { Pool, PeEntry, Selector } from '../entry.js';
import { ConsistentHashSelector } from './consistent-hash.js';
import { OrderedSelector, type OrderedRules } from './ordered.js';
import { RandomSelector } from './random.js';
import { RoundRobinSelector } from './round-robin.js';
import { loadSum, values } from './values.js';
import { WeightedRandomSelector, type WeightRules } from './weighted-random.js';

export interface SelectorOptions {
  virtualNodes: number;
}

interface PolicySpec {
  readonly name: string;
  readonly fields: readonly string[];
  create(pool: Pool, options: SelectorOptions): Selector;
}

/** RSPLIB scales the DPF factors (per unit of distance) like loads: a fraction of 0xffffffff. */
const DPF_MAX = 0xffffffff;
const WEIGHT_MAX = 0xffffffff;

const v = (e: PeEntry) => values(e.policy);

function ordered(rules: OrderedRules) {
  return (pool: Pool) => new OrderedSelector(pool, rules);
}

function weighted(rules: WeightRules) {
  return () => new WeightedRandomSelector(rules);
}

const SMI_OFFSET = 0x80000000;

/** Rules whose key is a pure function of the PE's values (an integer in [0, 2^32)). */
function byKey(key: (e: PeEntry) => number, used?: (e: PeEntry) => void): OrderedRules {
  const set = (e: PeEntry) => {
    e.k1 = key(e) - SMI_OFFSET;
  };
  return {
    init: set,
    refresh: set,
    used: used
      ? (e) => {
          used(e);
          set(e);
        }
      : undefined,
  };
}

const degrade = (e: PeEntry) => {
  e.degradation = loadSum(e.degradation, v(e).loadDegradation!);
};

function luDpfKey(e: PeEntry, distance: number): number {
  const x = v(e);
  return Math.min(LOAD_MAX, Math.round(x.load! + distance * x.loadDpf!));
}

function wrDpfWeight(e: PeEntry, distance: number): number {
  const x = v(e);
  const w = x.weight!;
  const value = w - Math.round((w * distance * x.weightDpf!) / DPF_MAX);
  // as RSPLIB: distance alone never drops a PE out of the selection
  return value <= 0 ? (w > 0 ? 1 : 0) : Math.min(value, WEIGHT_MAX);
}

/**
 * RSPLIB's weighted round robin order: (round, remaining count, seq). A PE
 * joins in the current round with count = weight; each use counts down, and
 * at the end of its count it moves to the next round. Result: per round a
 * PE with weight w is chosen w times.
 */
const weightedRoundRobin: OrderedRules = {
  init(e, round) {
    e.k1 = round;
    e.k2 = Math.max(1, v(e).weight!);
  },
  refresh(e) {
    e.k2 = Math.min(e.k2, Math.max(1, v(e).weight!));
  },
  used(e) {
    if (e.k2 > 1) e.k2--;
    else {
      e.k1++;
      e.k2 = Math.max(1, v(e).weight!);
    }
  },
};

const specs: ReadonlyMap<number, PolicySpec> = new Map<number, PolicySpec>([
  [PolicyType.RoundRobin, { name: 'round-robin', fields: [], create: (pool) => new RoundRobinSelector(pool) }],
  [PolicyType.Random, { name: 'random', fields: [], create: (pool) => new RandomSelector(pool) }],
  [PolicyType.WeightedRoundRobin, { name: 'weighted-round-robin', fields: ['weight'], create: ordered(weightedRoundRobin) }],
  [PolicyType.WeightedRandom, { name: 'weighted-random', fields: ['weight'], create: weighted({ weight: (e) => v(e).weight! }) }],
  [
    PolicyType.Priority,
    // highest priority first (RSPLIB sorts priority descending)
    { name: 'priority', fields: ['priority'], create: ordered(byKey((e) => LOAD_MAX - v(e).priority!)) },
  ],
  [PolicyType.LeastUsed, { name: 'least-used', fields: ['load'], create: ordered(byKey((e) => v(e).load!)) }],
  [
    PolicyType.LeastUsedDegradation,
    {
      name: 'least-used-degradation',
      fields: ['load', 'loadDegradation'],
      create: ordered(byKey((e) => loadSum(v(e).load!, e.degradation), degrade)),
    },
  ],
  [
    PolicyType.PriorityLeastUsed,
    {
      name: 'priority-least-used',
      fields: ['load', 'loadDegradation'],
      create: ordered(byKey((e) => loadSum(v(e).load!, v(e).loadDegradation!))),
    },
  ],
  [
    PolicyType.PriorityLeastUsedDegradation,
    {
      name: 'priority-least-used-degradation',
      fields: ['load', 'loadDegradation'],
      create: ordered(byKey((e) => loadSum(v(e).load!, v(e).loadDegradation!, e.degradation), degrade)),
    },
  ],
  [
    PolicyType.RandomizedLeastUsed,
    {
      name: 'randomized-least-used',
      fields: ['load'],
      create: weighted({ weight: (e) => Math.max(1, LOAD_MAX - v(e).load!) }),
    },
  ],
  [
    PolicyType.WeightedRandomDpf,
    {
      name: 'weighted-random-dpf',
      fields: ['weight', 'weightDpf', 'distance'],
      create: weighted({ weight: (e) => wrDpfWeight(e, e.distance), weightAtDistance: wrDpfWeight }),
    },
  ],
  [
    PolicyType.LeastUsedDpf,
    {
      name: 'least-used-dpf',
      fields: ['load', 'loadDpf', 'distance'],
      create: ordered({ ...byKey((e) => luDpfKey(e, e.distance)), keyAtDistance: (e, d) => luDpfKey(e, d) - SMI_OFFSET }),
    },
  ],
  [PolicyType.LeastConnections, { name: 'least-connections', fields: ['connections'], create: ordered(byKey((e) => v(e).connections!)) }],
  [
    PolicyType.WeightedLeastConnections,
    {
      name: 'weighted-least-connections',
      fields: ['weight', 'connections'],
      create: ordered(
        byKey((e) => {
          const x = v(e);
          // connections per unit of weight in 1/65536ths: integer keys stay unboxed
          if (x.weight! === 0) return LOAD_MAX;
          return Math.min(LOAD_MAX, Math.floor((x.connections! * 65536) / x.weight!));
        }),
      ),
    },
  ],
  [
    PolicyType.WeightedResponseTime,
    {
      name: 'weighted-response-time',
      fields: ['weight', 'responseTimeUs'],
      // share proportional to weight / response time, scaled to integers so the Fenwick sums stay exact
      create: weighted({
        weight: (e) => {
          const x = v(e);
          if (x.weight! === 0) return 0;
          return Math.min(WEIGHT_MAX, Math.max(1, Math.round((x.weight! * 1048576) / Math.max(1, x.responseTimeUs!))));
        },
      }),
    },
  ],
  [PolicyType.ConsistentHash, { name: 'consistent-hash', fields: ['weight'], create: (_pool, o) => new ConsistentHashSelector(o.virtualNodes) }],
]);

export function policySpec(type: number): PolicySpec | undefined {
  return specs.get(type);
}

/** Human name of a policy type, for logs and status. */
export function policyName(type: number): string {
  return specs.get(type)?.name ?? `unknown-0x${type.toString(16).padStart(8, '0')}`;
}
