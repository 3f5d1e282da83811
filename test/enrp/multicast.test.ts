import { afterEach, describe, expect, it, vi } from 'vitest';
import { pe } from './cluster.js';
import { createSocket } from 'node:dgram';
import { createHandlespace, type Handlespace } from '../../lib/handlespace/index.js';
import { createEnrpServer, type EnrpServer } from '../../lib/enrp/index.js';
import { waitFor } from '../transport/util.js';
import { serverInformation } from '../../lib/enrp/pe.js';
import { encodeEnrpMessage } from '../../protocols/enrp/codec.js';
import { EnrpMessageType } from '../../protocols/enrp/types.js';

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

  it('enrp - multicast presences only hint: spoofed ones for a dead registrar do not keep it from takeover', async () => {
    expect(await multicastWorks(), 'UDP multicast on the loopback interface does not work on this host').toBe(true);
    const timers = { peerHeartbeatCycleMs: 100, maxTimeLastHeardMs: 400, maxTimeNoResponseMs: 300, takeoverExpiryMs: 300, mentorDiscoveryMs: 200 };
    for (const [id, host] of [
      [1, '127.0.0.2'],
      [2, '127.0.0.3'],
    ] as const) {
      const hs = createHandlespace();
      nodes.push({ hs, server: createEnrpServer({ id, handlespace: hs, listen: [`tcp://${host}:0`], multicast: { ...MC, port: MC.port + 7 }, timers }) });
    }
    const up = waitFor(nodes[0]!.server.events, 'peer-up', { timeoutMs: 5_000 });
    for (const n of nodes) await n.server.start();
    await up;
    // The registrar that will die owns a PE, so its silence ends in a takeover.
    nodes[1]!.hs.register('svc', pe(7, 2), { ownerId: 2 });
    await vi.waitFor(() => expect(nodes[0]!.hs.has('svc', 7)).toBe(true), { timeout: 5_000, interval: 10 });
    const deadUrl = nodes[1]!.server.listenUrls[0]!;
    const [dead] = nodes.splice(1, 1);
    await dead!.server.stop();
    dead!.hs.close();
    // Someone on the link keeps announcing the dead registrar.
    const spoof = createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((resolve) => spoof.bind(0, '127.0.0.1', () => resolve()));
    spoof.setMulticastInterface(MC.interface);
    spoof.setMulticastLoopback(true);
    const datagram = Buffer.from(
      encodeEnrpMessage({ type: EnrpMessageType.Presence, senderServerId: 2, receiverServerId: 0, checksum: 0, server: serverInformation(2, deadUrl)! }),
    );
    const timer = setInterval(() => spoof.send(datagram, MC.port + 7, MC.group), 50);
    try {
      const [from] = await waitFor(nodes[0]!.server.events, 'takeover', { timeoutMs: 5_000 });
      expect(from).toBe(2);
    } finally {
      clearInterval(timer);
      spoof.close();
    }
  });
});
