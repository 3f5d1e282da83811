/**
 * ENRP registrars and URLs learned from multicast presence are capped and
 * expire (issue 11, finding 5): anyone on the link can announce as many
 * registrar ids as it likes. Real multicast on loopback, a ManualClock.
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import { createHandlespace } from '../../lib/handlespace/index.js';
import { createEnrpServer, type EnrpServer } from '../../lib/enrp/index.js';
import { serverInformation } from '../../lib/enrp/pe.js';
import { encodeEnrpMessage } from '../../protocols/enrp/codec.js';
import { EnrpMessageType } from '../../protocols/enrp/types.js';

const MC = { group: '239.0.0.51', port: 19_977, interface: '127.0.0.1', ttl: 1 };
const CYCLE = 1_000;

let server: EnrpServer | undefined;
let sender: Socket | undefined;
afterEach(async () => {
  sender?.close();
  await server?.stop();
  server = sender = undefined;
});

async function openSender(): Promise<Socket> {
  const s = createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => resolve());
  });
  s.setMulticastInterface(MC.interface);
  s.setMulticastLoopback(true);
  return s;
}

/** A presence from registrar `id` announcing an ENRP address where nothing listens. */
function presence(id: number): Buffer {
  const server = serverInformation(id, `tcp://127.77.${id >> 8}.${id & 0xff}:40000`)!;
  return Buffer.from(encodeEnrpMessage({ type: EnrpMessageType.Presence, senderServerId: id, receiverServerId: 0, checksum: 0, server }));
}

describe('security - ENRP peers learned by multicast', () => {
  it('enrp - 1,000 announced registrars hold at most 256 peers and URLs, and all but the configured ones expire after 4 cycles', async () => {
    const clock = new ManualClock();
    server = createEnrpServer(
      {
        id: 0xfffffff0,
        handlespace: createHandlespace({ clock }),
        listen: ['tcp://127.0.0.1:0'],
        peers: ['tcp://127.77.9.9:40000'],
        multicast: MC,
        timers: { peerHeartbeatCycleMs: CYCLE, mentorDiscoveryMs: 60_000 },
      },
      { clock },
    );
    await server.start();
    const s = await openSender();
    sender = s;
    const srv = server;
    // In batches, each waited for, so the receive buffer never overflows; the newest sender is always kept.
    for (let first = 1; first <= 1_000; first += 50) {
      for (let id = first; id < first + 50; id++) s.send(presence(id), MC.port, MC.group);
      const lastId = first + 49;
      await vi.waitFor(() => expect(srv.peers().some((p) => p.id === lastId)).toBe(true), { timeout: 5_000, interval: 10 });
    }
    expect(server.peers().length).toBeLessThanOrEqual(256);
    expect(server.status().knownUrls).toBeLessThanOrEqual(1 + 256);

    await clock.advanceAsync(5 * CYCLE, CYCLE / 4);
    expect(server.peers()).toEqual([]);
    expect(server.status().knownUrls).toBe(1);
  });
});
