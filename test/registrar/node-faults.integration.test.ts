/** Registrar nodes (ASAP + ENRP over TCP on loopback) under faults: takeover supervision. */
import { createServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { createRegistrar, createRegistrarNode, type RegistrarNode } from '../../lib/registrar/index.js';
import { createTransports } from '../../lib/transport/index.js';
import { waitFor } from '../transport/util.js';
import { RawClient, element, te } from './helpers.js';

const nodes: RegistrarNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop();
});

const TIMERS = { peerHeartbeatCycleMs: 200, maxTimeLastHeardMs: 500, maxTimeNoResponseMs: 300, takeoverExpiryMs: 300, mentorDiscoveryMs: 300 };

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function pair(): Promise<[RegistrarNode, RegistrarNode]> {
  const [ea, eb] = [await freePort(), await freePort()];
  const make = (id: number, own: number, peer: number): RegistrarNode =>
    createRegistrarNode({
      id,
      asap: ['tcp://127.0.0.1:0'],
      announce: false,
      keepAliveIntervalMs: 200,
      keepAliveTimeoutMs: 200,
      enrp: { listen: [`tcp://127.0.0.1:${own}`], peers: [`tcp://127.0.0.1:${peer}`], multicast: false, timers: TIMERS },
    });
  const a = make(0xa1, ea, eb);
  const b = make(0xb1, eb, ea);
  nodes.push(a, b);
  await Promise.all([a.start(), b.start()]);
  return [a, b];
}

describe('registrar node faults', () => {
  it('a PE taken over by ENRP is keep-alive supervised: one that cannot be reached is removed, not kept until its life ends', async () => {
    const [a, b] = await pair();
    // A PE whose ASAP transport nobody listens on any more: it died with its registrar.
    const deadPort = await freePort();
    const raw = await RawClient.connect(createTransports({}), a.registrar.addresses[0]!.href);
    const pe = {
      ...element(7, { life: 600_000 }),
      asapTransport: { protocol: 'tcp' as const, port: deadPort, addresses: ['127.0.0.1'], transportUse: 0 as const },
    };
    const learned = waitFor(b.registrar.handlespace.events, 'added', { timeoutMs: 5_000 });
    raw.send({ type: AsapMessageType.Registration, handle: te('sup'), element: pe });
    await raw.next(AsapMessageType.RegistrationResponse);
    await learned;
    const removed = waitFor(b.registrar, 'removed', { timeoutMs: 10_000 });
    const tookOver = waitFor(b.enrp!.events, 'takeover', { timeoutMs: 10_000 });
    // A vanishes (its ENRP and ASAP stop without a word to B).
    nodes.splice(nodes.indexOf(a), 1);
    await a.enrp!.stop();
    raw.conn.abort();
    await a.registrar.stop();
    await tookOver;
    expect(b.registrar.handlespace.get('sup', 7)?.homeRegistrarId).toBe(b.id);
    const [entry, reason] = await removed;
    expect(entry.identifier).toBe(7);
    expect(reason).toBe('keep-alive-timeout');
    expect(b.registrar.handlespace.has('sup', 7)).toBe(false);
  });

  it('after an event-loop stall longer than the keep-alive timeout, an ACK that arrived during the stall counts before the PE is timed out', async () => {
    const registrar = createRegistrar({ asap: ['tcp://127.0.0.1:0'], announce: false, keepAliveIntervalMs: 100, keepAliveTimeoutMs: 100 });
    await registrar.start();
    try {
      const removed: string[] = [];
      registrar.on('removed', (e, why) => removed.push(`${e.identifier} ${why}`));
      const raw = await RawClient.connect(createTransports({}), registrar.addresses[0]!.href);
      raw.send({ type: AsapMessageType.Registration, handle: te('stall'), element: element(9) });
      await raw.next(AsapMessageType.RegistrationResponse);
      let stalls = 0;
      const acked = new Promise<void>((resolve) => {
        registrar.on('removed', () => resolve());
        raw.conn.on('message', () => {
          // The PE answers at once; then the whole process (registrar included) stalls for 4 timeouts.
          raw.send({ type: AsapMessageType.EndpointKeepAliveAck, handle: te('stall'), identifier: 9 });
          if (stalls++ === 0) {
            const until = performance.now() + 400;
            while (performance.now() < until);
          }
          if (stalls === 3) resolve();
        });
      });
      await acked;
      expect(removed).toEqual([]);
      expect(registrar.handlespace.has('stall', 9)).toBe(true);
      raw.conn.abort();
    } finally {
      await registrar.stop();
    }
  });
});
