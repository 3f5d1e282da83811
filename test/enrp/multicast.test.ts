import { afterEach, describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import { createHandlespace, type Handlespace } from '../../lib/handlespace/index.js';
import { createEnrpServer, type EnrpServer } from '../../lib/enrp/index.js';
import { waitFor } from '../transport/util.js';

const MC = { group: '239.0.0.51', port: 19_901, interface: '127.0.0.1', ttl: 1 };

/** Whether multicast loops back on this host's loopback interface. */
async function multicastWorks(): Promise<boolean> {
  const s = createSocket({ type: 'udp4', reuseAddr: true });
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(MC.port + 1, () => resolve());
    });
    s.addMembership(MC.group, MC.interface);
    s.setMulticastInterface(MC.interface);
    s.setMulticastLoopback(true);
    const got = new Promise<boolean>((resolve) => {
      s.once('message', () => resolve(true));
      setTimeout(() => resolve(false), 300);
    });
    s.send(Buffer.from('probe'), MC.port + 1, MC.group);
    return await got;
  } catch {
    return false;
  } finally {
    s.close();
  }
}

const nodes: { hs: Handlespace; server: EnrpServer }[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) {
    await n.server.stop();
    n.hs.close();
  }
});

describe('ENRP multicast discovery', () => {
  it('enrp - two registrars with no static peers find each other by multicast presence on loopback', async () => {
    // A host without loopback multicast fails here with a reason, rather than passing unseen.
    expect(await multicastWorks(), 'UDP multicast on the loopback interface does not work on this host').toBe(true);
    for (const [id, host] of [
      [1, '127.0.0.2'],
      [2, '127.0.0.3'],
    ] as const) {
      const hs = createHandlespace();
      const server = createEnrpServer({
        id,
        handlespace: hs,
        listen: [`tcp://${host}:0`],
        multicast: MC,
        timers: { peerHeartbeatCycleMs: 100, maxTimeLastHeardMs: 1_000, maxTimeNoResponseMs: 500, mentorDiscoveryMs: 200 },
      });
      nodes.push({ hs, server });
    }
    const up = waitFor(nodes[0]!.server.events, 'peer-up', { timeoutMs: 5_000 });
    for (const n of nodes) await n.server.start();
    const [peer] = await up;
    expect(peer.id).toBe(2);
    expect(peer.url).toBe(nodes[1]!.server.listenUrls[0]);
  });
});
