/** An in-process ENRP cluster over the memory transport with a ManualClock. */
import { ManualClock } from '../../lib/clock.js';
import { createHandlespace, createSeededRandom, INFINITE_LIFE, type Handlespace } from '../../lib/handlespace/index.js';
import { createMemoryNetwork, createTransports, type MemoryNetwork, type PeerIdentity } from '../../lib/transport/index.js';
import { createEnrpServer, type EnrpServer, type EnrpServerInit, type EnrpTimers } from '../../lib/enrp/index.js';
import { PolicyType, TransportUse, type PoolElementParameter } from '../../protocols/parameters/types.js';

export const TEST_TIMERS: EnrpTimers = {
  peerHeartbeatCycleMs: 1_000,
  maxTimeLastHeardMs: 3_000,
  maxTimeNoResponseMs: 2_000,
  takeoverExpiryMs: 2_000,
  mentorDiscoveryMs: 2_000,
  connectTimeoutMs: 2_000,
};

export interface ClusterNode {
  readonly index: number;
  readonly id: number;
  /** Memory host name: an IP address, so presences can carry it as server information. */
  readonly host: string;
  readonly url: string;
  hs: Handlespace;
  server: EnrpServer;
  alive: boolean;
}

export interface ClusterOptions {
  timers?: Partial<EnrpTimers>;
  maxPageElements?: number;
  latencyMs?: number;
  /** Extra init for every server. */
  init?: Partial<EnrpServerInit>;
  /** Extra init for the server of node i. */
  initFor?: (i: number) => Partial<EnrpServerInit>;
  /** The identity each registrar's connections prove (as a TLS handshake would). */
  identity?: (index: number) => PeerIdentity;
}

export interface Cluster {
  readonly clock: ManualClock;
  readonly net: MemoryNetwork;
  readonly nodes: ClusterNode[];
  /** Adds and starts n registrars (ids 1.., static peers = every registrar of the cluster). */
  spawn(n: number): Promise<ClusterNode[]>;
  node(i: number): ClusterNode;
  live(): ClusterNode[];
  partition(a: number[], b: number[]): void;
  heal(): void;
  /** The host vanishes (no word to its peers) and its server stops. */
  kill(i: number): Promise<void>;
  /** A fresh registrar with the same id and an empty handlespace. */
  restart(i: number, opts?: { start?: boolean }): Promise<ClusterNode>;
  /** Advances the clock by ms in steps, letting I/O run in between. */
  advance(ms: number, stepMs?: number): Promise<void>;
  /** Advances until pred holds; returns the clock time it took; throws after maxMs. */
  until(pred: () => boolean, maxMs?: number, what?: string): Promise<number>;
  /** Advances until every live registrar is synchronised and all hold the same handlespace. */
  settle(maxMs?: number): Promise<number>;
  converged(): boolean;
  teardown(): Promise<void>;
}

export function pe(identifier: number, homeRegistrarId: number, port = 7000): PoolElementParameter {
  return {
    identifier,
    homeRegistrarId,
    registrationLife: INFINITE_LIFE,
    userTransport: { protocol: 'tcp', port, addresses: ['127.0.0.1'], transportUse: TransportUse.DataOnly },
    policy: { type: PolicyType.RoundRobin },
  };
}

/** Every PE as "pool/id@owner", sorted. */
export function fingerprint(hs: Handlespace): string[] {
  const out: string[] = [];
  for (const o of hs.owners()) for (const e of hs.owned(o)) out.push(`${e.poolKey}/${e.identifier}@${e.homeRegistrarId}`);
  return out.sort();
}

/** PE set without owners. */
export function peSet(hs: Handlespace): string[] {
  const out: string[] = [];
  for (const o of hs.owners()) for (const e of hs.owned(o)) out.push(`${e.poolKey}/${e.identifier}`);
  return out.sort();
}

export function checksums(hs: Handlespace): Record<number, number> {
  const out: Record<number, number> = {};
  for (const o of hs.owners().sort((a, b) => a - b)) out[o] = hs.checksum(o);
  return out;
}

export function createCluster(options: ClusterOptions = {}): Cluster {
  const clock = new ManualClock(0);
  const net = createMemoryNetwork({ latencyMs: options.latencyMs ?? 1 }, { clock });
  const nodes: ClusterNode[] = [];
  const timers = { ...TEST_TIMERS, ...options.timers };
  const hostOf = (i: number): string => `127.1.0.${i + 1}`;
  const urlOf = (i: number): string => `memory://${hostOf(i)}:9901`;
  let planned = 0;

  const build = (i: number): ClusterNode => {
    const host = hostOf(i);
    const hs = createHandlespace({ clock, random: createSeededRandom(100 + i) });
    const identity = options.identity?.(i);
    const transports = createTransports({ tcp: false, memory: { network: net, name: host, ...(identity ? { identity } : {}) } }, { clock });
    const peers = Array.from({ length: planned }, (_, k) => urlOf(k)).filter((_, k) => k !== i);
    const server = createEnrpServer(
      {
        id: i + 1,
        handlespace: hs,
        listen: [urlOf(i)],
        peers,
        multicast: false,
        timers,
        ...(options.maxPageElements !== undefined ? { maxPageElements: options.maxPageElements } : {}),
        ...options.init,
        ...options.initFor?.(i),
      },
      { clock, transportFor: transports.transportFor, random: createSeededRandom(200 + i) },
    );
    return { index: i, id: i + 1, host, url: urlOf(i), hs, server, alive: true };
  };

  const step = async (stepMs: number): Promise<void> => {
    clock.advance(stepMs);
    for (let k = 0; k < 3; k++) await new Promise<void>((r) => setImmediate(r));
  };

  const cluster: Cluster = {
    clock,
    net,
    nodes,
    async spawn(n) {
      const first = nodes.length;
      planned = first + n;
      const made: ClusterNode[] = [];
      for (let i = first; i < first + n; i++) {
        const node = build(i);
        nodes.push(node);
        made.push(node);
      }
      for (const node of made) await node.server.start();
      return made;
    },
    node(i) {
      const n = nodes[i];
      if (!n) throw new Error(`no node ${i}`);
      return n;
    },
    live: () => nodes.filter((n) => n.alive),
    partition(a, b) {
      net.partition(a.map(hostOf), b.map(hostOf));
    },
    heal() {
      net.heal();
    },
    async kill(i) {
      const n = cluster.node(i);
      net.kill(n.host);
      n.alive = false;
      await n.server.stop();
      n.hs.close();
    },
    async restart(i, opts = {}) {
      const old = cluster.node(i);
      if (old.alive) await cluster.kill(i);
      net.revive(old.host);
      const fresh = build(i);
      nodes[i] = fresh;
      if (opts.start ?? true) await fresh.server.start();
      return fresh;
    },
    async advance(ms, stepMs = 10) {
      for (let left = ms; left > 0; left -= stepMs) await step(Math.min(stepMs, left));
    },
    async until(pred, maxMs = 60_000, what = 'condition') {
      const start = clock.now();
      while (!pred()) {
        if (clock.now() - start > maxMs) throw new Error(`${what} not reached within ${maxMs} ms of clock time`);
        await step(10);
      }
      return clock.now() - start;
    },
    converged() {
      const live = cluster.live();
      if (live.length === 0) return true;
      if (!live.every((n) => n.server.synchronised)) return false;
      // Cheap checks first: sizes and per-owner checksums, then the full PE sets.
      const head = live[0]!.hs;
      const sums = JSON.stringify(checksums(head));
      if (!live.every((n) => n.hs.size === head.size && JSON.stringify(checksums(n.hs)) === sums)) return false;
      const ref = fingerprint(head).join(',');
      return live.every((n) => fingerprint(n.hs).join(',') === ref);
    },
    async settle(maxMs = 60_000) {
      return cluster.until(() => cluster.converged(), maxMs, 'convergence');
    },
    async teardown() {
      for (const n of nodes) {
        if (!n.alive) continue;
        n.alive = false;
        await n.server.stop();
        n.hs.close();
      }
    },
  };
  return cluster;
}
