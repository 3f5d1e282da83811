/**
 * Registrar nodes (ASAP + ENRP) over the memory transport with a ManualClock,
 * each proving a registrar identity, and raw ASAP clients with identities of
 * their own: what a TLS cluster with an ACL looks like to the protocol logic.
 */
import { ManualClock } from '../../lib/clock.js';
import { createSeededRandom } from '../../lib/handlespace/index.js';
import { createMemoryNetwork, createTransports, type MemoryNetwork, type PeerIdentity } from '../../lib/transport/index.js';
import { createAcl, createRegistrarNode, type RegistrarNode, type RegistrarNodeInit } from '../../lib/registrar/index.js';
import { TEST_TIMERS } from '../enrp/cluster.js';
import { AsapMessageType, type AsapRegistrationResponse } from '../../protocols/asap/types.js';
import { element, RawClient, te } from './helpers.js';

export const psk = (name: string): PeerIdentity => ({ kind: 'psk', name });

export const SECURE_ACL = {
  rules: [
    { identity: 'reg-*', roles: ['registrar'] },
    { identity: 'pe-*', roles: ['pe'], handles: ['svc'] },
    { identity: '*', roles: ['pu'], handles: ['*'] },
  ],
};

export interface IdentityCluster {
  clock: ManualClock;
  net: MemoryNetwork;
  nodes: RegistrarNode[];
  asapUrl(i: number): string;
  /** A raw ASAP client from `host` proving `identity` (none: anonymous), connected to registrar i. */
  client(i: number, host: string, identity?: PeerIdentity): Promise<RawClient>;
  /** Sends a registration from `client` and returns the registrar's answer (the clock moves meanwhile). */
  register(client: RawClient, identifier: number, port: number, life?: number): Promise<AsapRegistrationResponse>;
  advance(ms: number, stepMs?: number): Promise<void>;
  /** Advances until pred holds; throws after maxMs of clock time. */
  until(pred: () => boolean, maxMs?: number, what?: string): Promise<void>;
  teardown(): Promise<void>;
}

export interface IdentityClusterOptions {
  /** Registrar identities (default psk reg-N) and an ACL (default SECURE_ACL); false for an anonymous cluster. */
  secure?: boolean;
  init?: Partial<RegistrarNodeInit>;
}

export async function createIdentityCluster(n: number, options: IdentityClusterOptions = {}): Promise<IdentityCluster> {
  const secure = options.secure ?? true;
  const clock = new ManualClock(0);
  const net = createMemoryNetwork({ latencyMs: 1 }, { clock });
  const host = (i: number): string => `127.1.0.${i + 1}`;
  const enrpUrl = (i: number): string => `memory://${host(i)}:9901`;
  const asapUrl = (i: number): string => `memory://${host(i)}:3863`;
  const acl = secure ? createAcl(SECURE_ACL) : undefined;
  const nodes: RegistrarNode[] = [];
  for (let i = 0; i < n; i++) {
    const identity = secure ? psk(`reg-${i + 1}`) : undefined;
    const transports = createTransports({ tcp: false, memory: { network: net, name: host(i), ...(identity ? { identity } : {}) } }, { clock });
    nodes.push(
      createRegistrarNode(
        {
          id: i + 1,
          asap: [asapUrl(i)],
          announce: false,
          ...(acl ? { acl } : {}),
          ...options.init,
          enrp: {
            listen: [enrpUrl(i)],
            peers: Array.from({ length: n }, (_, k) => enrpUrl(k)).filter((_, k) => k !== i),
            multicast: false,
            timers: TEST_TIMERS,
          },
        },
        { clock, transports, random: createSeededRandom(300 + i) },
      ),
    );
  }
  const advance = async (ms: number, stepMs = 20): Promise<void> => {
    for (let left = ms; left > 0; left -= stepMs) {
      clock.advance(Math.min(stepMs, left));
      for (let k = 0; k < 5; k++) await new Promise<void>((r) => setImmediate(r));
    }
  };
  const until = async (pred: () => boolean, maxMs = 10_000, what = 'condition'): Promise<void> => {
    const start = clock.now();
    while (!pred()) {
      if (clock.now() - start > maxMs) throw new Error(`${what} did not hold within ${maxMs} ms of clock time`);
      await advance(20);
    }
  };
  const clients: RawClient[] = [];
  await Promise.all(nodes.map((node) => node.start()));
  await until(
    () => nodes.every((node) => node.registrar.synchronised && node.status().peers.filter((p) => p.state === 'up').length === n - 1),
    10_000,
    'cluster up',
  );
  return {
    clock,
    net,
    nodes,
    asapUrl,
    async client(i, from, identity) {
      const t = createTransports({ tcp: false, memory: { network: net, name: from, ...(identity ? { identity } : {}) } }, { clock });
      const connecting = RawClient.connect(t, asapUrl(i));
      await advance(20);
      const c = await connecting;
      clients.push(c);
      return c;
    },
    async register(client, identifier, port, life) {
      client.send({ type: AsapMessageType.Registration, handle: te('svc'), element: element(identifier, { port, ...(life !== undefined ? { life } : {}) }) });
      await until(() => client.received.some((m) => m.type === AsapMessageType.RegistrationResponse), 2_000, 'registration response');
      return client.next(AsapMessageType.RegistrationResponse);
    },
    advance,
    until,
    async teardown() {
      for (const c of clients) c.conn.abort();
      for (const node of nodes) await node.stop();
    },
  };
}
