/**
 * Handlespace benchmark: register, re-register, deregister and resolve (3
 * items) at 10^3, 10^5 and 10^6 PEs under round robin, weighted random and
 * least used, plus heap bytes per PE.
 *
 * Pools: min(1000, PEs / 10), so 100 pools of 10 PEs at 10^3 and 1,000 pools
 * (1,000 PEs each at 10^6) above: every size keeps pools of a realistic size
 * and the 10^6 case is the brief's "10^6 PEs over 1,000 pools".
 * A second 10^3 layout, 1 pool of 1,000 PEs (the pool size of the 10^6 case),
 * is resolved too: resolve-slowdown-1e6-vs-1e3-same-pool-size is the slowdown
 * due to n alone, resolve-slowdown-1e6-vs-1e3 the one due to n and pool size.
 * Each PE has its own transport and policy objects (as decoded from the wire),
 * and they count in heap-per-pe. --quick skips 10^6 and measures for less time.
 * A warm-up pass at 10^4 PEs (not reported) runs first so no case times the JIT.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { opsPerSecond, type BenchContext } from './context.js';
import { createHandlespace, createSeededRandom, type Handlespace } from '../../lib/handlespace/index.js';
import { PolicyType, type MemberSelectionPolicy, type PoolElementParameter } from '../../protocols/parameters/types.js';

type PolicyName = 'round-robin' | 'weighted-random' | 'least-used';
const POLICIES: PolicyName[] = ['round-robin', 'weighted-random', 'least-used'];

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function heapUsed(): number {
  gc();
  gc();
  return v8.getHeapStatistics().used_heap_size;
}

function policyOf(name: PolicyName, i: number, load: number): MemberSelectionPolicy {
  switch (name) {
    case 'round-robin':
      return { type: PolicyType.RoundRobin };
    case 'weighted-random':
      return { type: PolicyType.WeightedRandom, weight: 1 + (i % 10) };
    case 'least-used':
      return { type: PolicyType.LeastUsed, load };
  }
}

function makePe(name: PolicyName, i: number, load: number): PoolElementParameter {
  return {
    identifier: (i * 2654435761) >>> 0,
    homeRegistrarId: 1 + (i % 5),
    registrationLife: 30_000 + (i % 1000),
    userTransport: {
      protocol: 'tcp',
      port: 1024 + (i % 60000),
      addresses: [`10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`],
      transportUse: 0,
    },
    policy: policyOf(name, i, load),
  };
}

function handles(pools: number): Uint8Array[] {
  const enc = new TextEncoder();
  return Array.from({ length: pools }, (_, p) => enc.encode(`pool-${p.toString().padStart(5, '0')}`));
}

interface Built {
  hs: Handlespace;
  poolOf: Uint32Array;
  hs_handles: Uint8Array[];
}

export async function run(ctx: BenchContext): Promise<void> {
  const sizes = ctx.quick ? [1_000, 100_000] : [1_000, 100_000, 1_000_000];
  const ms = ctx.quick ? 300 : 1000;
  const resolveRate = new Map<string, number>();
  // warm-up pass, not reported: the first (small) case would otherwise time the JIT
  const mute: BenchContext = { quick: ctx.quick, report: () => {}, log: () => {} };
  for (const policy of POLICIES) runOne(mute, 10_000, policy, 100);
  for (const pes of sizes) {
    for (const policy of POLICIES) {
      // one function per case: nothing of the previous case stays reachable when the heap is measured
      resolveRate.set(`${policy}/${pes}`, runOne(ctx, pes, policy, ms));
      ctx.log(`handlespace: ${policy} at ${pes} PEs done`);
    }
  }
  // 10^3 PEs in one pool of 1,000: the pool size of the 10^6 case
  for (const policy of POLICIES) resolveRate.set(`${policy}/1pool`, runOne(ctx, 1_000, policy, ms, 1));
  const small = sizes[0]!;
  const large = sizes[sizes.length - 1]!;
  for (const policy of POLICIES) {
    const a = resolveRate.get(`${policy}/${small}`)!;
    const b = resolveRate.get(`${policy}/${large}`)!;
    ctx.report({
      name: `resolve-slowdown-${large === 1_000_000 ? '1e6' : '1e5'}-vs-1e3`,
      value: a / b,
      unit: 'x',
      policy,
    });
    if (large === 1_000_000) {
      ctx.report({
        name: 'resolve-slowdown-1e6-vs-1e3-same-pool-size',
        value: resolveRate.get(`${policy}/1pool`)! / b,
        unit: 'x',
        policy,
      });
    }
  }
}

/** Registers `pes` PEs (timed without making their parameters) and returns the handlespace. */
function build(ctx: BenchContext, pes: number, pools: number, policy: PolicyName, rnd: () => number): Built {
  const hsHandles = handles(pools);
  const params: PoolElementParameter[] = [];
  const poolOf = new Uint32Array(pes);
  for (let i = 0; i < pes; i++) {
    poolOf[i] = i % pools;
    params.push(makePe(policy, i, Math.floor(rnd() * 0xffffffff)));
  }
  const hs = createHandlespace({ random: rnd, autoExpire: false });
  const t0 = performance.now();
  for (let i = 0; i < pes; i++) hs.register(hsHandles[poolOf[i]!]!, params[i]!);
  const regRate = (pes * 1000) / (performance.now() - t0);
  ctx.report({ name: 'register', value: regRate, unit: 'op/s', pes, pools, policy });
  return { hs, poolOf, hs_handles: hsHandles };
}

function runOne(ctx: BenchContext, pes: number, policy: PolicyName, ms: number, pools = Math.min(1000, pes / 10)): number {
  const rnd = createSeededRandom(pes + policy.length);
  const base = heapUsed();
  const built = build(ctx, pes, pools, policy, rnd);
  const { hs, poolOf, hs_handles: hsHandles } = built;
  const perPe = (heapUsed() - base) / pes;
  ctx.report({ name: 'heap-per-pe', value: perPe, unit: 'bytes', pes, pools, policy });

  measureReregister(ctx, built, policy, pes, pools, rnd, ms);

  // resolve 3 items from random pools
  const order = new Uint32Array(65536);
  for (let i = 0; i < order.length; i++) order[i] = Math.floor(rnd() * pools);
  let k = 0;
  const rate = opsPerSecond(() => {
    hs.resolve(hsHandles[order[k++ & 65535]!]!);
  }, ms);
  ctx.report({ name: 'resolve', value: rate, unit: 'op/s', pes, pools, policy, items: 3 });

  // deregister a tenth of the PEs (all of them in small cases), in random order
  const count = pes <= 10_000 ? pes : Math.floor(pes / 10);
  const victims: [Uint8Array, number][] = [];
  const seen = new Set<number>();
  while (victims.length < count) {
    const i = Math.floor(rnd() * pes);
    if (seen.has(i)) continue;
    seen.add(i);
    victims.push([hsHandles[poolOf[i]!]!, (i * 2654435761) >>> 0]);
  }
  const t0 = performance.now();
  for (const [h, id] of victims) hs.deregister(h, id);
  const deregRate = (count * 1000) / (performance.now() - t0);
  ctx.report({ name: 'deregister', value: deregRate, unit: 'op/s', pes, pools, policy });
  hs.close();
  return rate;
}

function measureReregister(ctx: BenchContext, b: Built, policy: PolicyName, pes: number, pools: number, rnd: () => number, ms: number): void {
  // fresh parameters for existing PEs (new load / weight), made before timing
  const batch = Math.min(pes, 200_000);
  const params: PoolElementParameter[] = [];
  const where: Uint8Array[] = [];
  for (let j = 0; j < batch; j++) {
    const i = Math.floor(rnd() * pes);
    const e = b.hs.get(b.hs_handles[b.poolOf[i]!]!, (i * 2654435761) >>> 0)!;
    params.push({
      identifier: e.identifier,
      homeRegistrarId: e.homeRegistrarId,
      registrationLife: e.registrationLife,
      userTransport: e.userTransport,
      policy: policyOf(policy, i + 1, Math.floor(rnd() * 0xffffffff)),
    });
    where.push(b.hs_handles[b.poolOf[i]!]!);
  }
  let j = 0;
  const rate = opsPerSecond(
    () => {
      b.hs.register(where[j]!, params[j]!);
      if (++j === batch) j = 0;
    },
    ms,
    100,
  );
  ctx.report({ name: 'reregister', value: rate, unit: 'op/s', pes, pools, policy });
}
