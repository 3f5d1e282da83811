/**
 * ENRP on loopback TCP, in one process: propagation of a registration to
 * every peer, takeover time after a registrar dies, ENRP bytes per
 * registration, and the resync of a registrar joining 100,000 PEs.
 */
import { createHandlespace, type Handlespace } from '../../lib/handlespace/index.js';
import { createEnrpServer, type EnrpServer, type EnrpTimers } from '../../lib/enrp/index.js';
import { INFINITE_LIFE } from '../../lib/handlespace/index.js';
import { PolicyType, TransportUse, type PoolElementParameter } from '../../protocols/parameters/types.js';
import type { BenchContext } from './context.js';

const TIMERS: EnrpTimers = {
  peerHeartbeatCycleMs: 200,
  maxTimeLastHeardMs: 600,
  maxTimeNoResponseMs: 400,
  takeoverExpiryMs: 400,
  mentorDiscoveryMs: 300,
  connectTimeoutMs: 400,
};

interface Node {
  id: number;
  hs: Handlespace;
  server: EnrpServer;
}

function pe(identifier: number, home: number): PoolElementParameter {
  return {
    identifier,
    homeRegistrarId: home,
    registrationLife: INFINITE_LIFE,
    userTransport: { protocol: 'tcp', port: 7000 + (identifier % 1000), addresses: ['127.0.0.1'], transportUse: TransportUse.DataOnly },
    policy: { type: PolicyType.RoundRobin },
  };
}

async function start(id: number, host: string, peers: string[]): Promise<Node> {
  const hs = createHandlespace();
  const server = createEnrpServer({ id, handlespace: hs, listen: [`tcp://${host}:0`], peers, multicast: false, timers: TIMERS });
  await server.start();
  return { id, hs, server };
}

async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!pred()) {
    if (performance.now() > end) throw new Error(`bench: ${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export async function run(ctx: BenchContext): Promise<void> {
  const timers = { ...TIMERS } as Record<string, number>;
  const n = ctx.quick ? 200 : 1_000;
  const hub = await start(1, '127.0.0.2', []);
  const hubUrl = hub.server.listenUrls[0]!;
  const nodes = [hub];
  for (let i = 2; i <= 5; i++) nodes.push(await start(i, `127.0.0.${i + 1}`, [hubUrl]));
  try {
    await until(() => nodes.every((x) => x.server.synchronised && x.server.peers().filter((p) => p.state === 'up').length === 4), 10_000, 'full mesh');
    ctx.log(`enrp: 5 registrars meshed on loopback TCP`);

    // --- propagation -------------------------------------------------------
    const lat: number[] = [];
    const bytesBefore = nodes.reduce((s, x) => s + x.server.status().counters.updateBytesSent, 0);
    for (let i = 0; i < n; i++) {
      const home = nodes[i % 5]!;
      const others = nodes.filter((x) => x !== home);
      let seen = 0;
      const t0 = performance.now();
      const done = new Promise<number>((resolve) => {
        for (const o of others) {
          const fn = (): void => {
            o.hs.events.off('added', fn);
            if (++seen === others.length) resolve(performance.now() - t0);
          };
          o.hs.events.on('added', fn);
        }
      });
      home.hs.register(`bench-${i % 10}`, pe(i + 1, home.id), { ownerId: home.id });
      lat.push(await done);
    }
    lat.sort((a, b) => a - b);
    const bytes = nodes.reduce((s, x) => s + x.server.status().counters.updateBytesSent, 0) - bytesBefore;
    ctx.report({ name: 'propagation-p50', value: quantile(lat, 0.5), unit: 'ms', registrations: n, peers: 4 });
    ctx.report({ name: 'propagation-p99', value: quantile(lat, 0.99), unit: 'ms', registrations: n, peers: 4 });
    ctx.report({ name: 'bytes-per-registration', value: bytes / n, unit: 'bytes', peers: 4, perPeer: bytes / n / 4 });

    // --- takeover ------------------------------------------------------------
    const victim = nodes[4]!;
    const survivors = nodes.slice(0, 4);
    const owned = victim.hs.ownedCount(victim.id);
    const t0 = performance.now();
    await victim.server.stop();
    victim.hs.close();
    await until(() => survivors.every((x) => x.hs.ownedCount(victim.id) === 0), 10_000, 'takeover');
    const took = performance.now() - t0;
    ctx.report({ name: 'takeover', value: took, unit: 'ms', pes: owned, ...timers, budget: TIMERS.maxTimeLastHeardMs + TIMERS.maxTimeNoResponseMs + 1_000 });
  } finally {
    for (const x of nodes) {
      await x.server.stop();
      x.hs.close();
    }
  }

  // --- resync of a joining registrar ------------------------------------------
  const total = ctx.quick ? 20_000 : 100_000;
  const mentor = await start(20, '127.0.0.10', []);
  for (let i = 0; i < total; i++) mentor.hs.register(`pool-${i % 100}`, pe(i + 1, 20), { ownerId: 20 });
  const hs = createHandlespace();
  const joiner = createEnrpServer({
    id: 21,
    handlespace: hs,
    listen: ['tcp://127.0.0.11:0'],
    peers: [mentor.server.listenUrls[0]!],
    multicast: false,
    timers: TIMERS,
  });
  try {
    await until(() => mentor.server.synchronised, 5_000, 'mentor alone');
    const t0 = performance.now();
    const synced = new Promise<void>((resolve) => joiner.events.once('synchronised', () => resolve()));
    await joiner.start();
    await synced;
    const took = performance.now() - t0;
    if (hs.size !== total) throw new Error(`bench: joiner has ${hs.size} PEs, expected ${total}`);
    const st = joiner.status().counters;
    ctx.report({
      name: total === 100_000 ? 'resync-100k' : `resync-${total / 1000}k`,
      value: took,
      unit: 'ms',
      pes: total,
      bytes: st.bytesReceived,
      messages: st.messagesReceived,
    });
  } finally {
    await joiner.stop();
    await mentor.server.stop();
    hs.close();
    mentor.hs.close();
  }
}
