import { afterEach, describe, expect, it } from 'vitest';
import { createTransports, PPID, type Connection } from '../../lib/transport/index.js';
import { decodeEnrpMessage, encodeEnrpMessage } from '../../protocols/enrp/codec.js';
import { EnrpFlags, EnrpMessageType, type EnrpMessage } from '../../protocols/enrp/types.js';
import { createCluster, pe, type Cluster } from './cluster.js';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.teardown();
  cluster = undefined;
});

const PEER = 99;

describe('ENRP handle updates', () => {
  it("name the peer as Receiving Server's ID (RFC 5353 2.1: 0 is for no particular server)", async () => {
    cluster = createCluster();
    const c = cluster;
    const [home, other] = await c.spawn(2);
    await c.settle();
    // A second peer speaking raw ENRP, to see the bytes it is sent.
    const transport = createTransports({ tcp: false, memory: { network: c.net, name: '127.1.0.99' } }, { clock: c.clock });
    const connP = transport.connect(home!.url, { ppid: PPID.ENRP });
    await c.advance(20);
    const conn: Connection = await connP;
    const got: EnrpMessage[] = [];
    conn.on('message', (b) => got.push(decodeEnrpMessage(b)));
    conn.send(
      encodeEnrpMessage({ type: EnrpMessageType.Presence, senderServerId: PEER, receiverServerId: 0, checksum: 0xffff, flags: EnrpFlags.ReplyRequired }),
      PPID.ENRP,
    );
    await c.advance(20);

    home!.hs.register('upd', pe(7, home!.id), { ownerId: home!.id });
    await c.advance(50);
    const updates = got.filter((m) => m.type === EnrpMessageType.HandleUpdate);
    expect(updates).toHaveLength(1);
    expect(updates[0]!.senderServerId).toBe(home!.id);
    expect(updates[0]!.receiverServerId).toBe(PEER);
    // The registrar peer got (and applied) its own copy too.
    expect(other!.hs.get('upd', 7)?.homeRegistrarId).toBe(home!.id);
    conn.abort();
  });

  it('never move a PE away from its owner while the owner holds its ASAP association', async () => {
    let held = true;
    cluster = createCluster({ initFor: (i) => (i === 0 ? { holdsPoolElement: () => held } : {}) });
    const c = cluster;
    const [owner, thief] = await c.spawn(2);
    owner!.hs.register('svc', pe(5, owner!.id), { ownerId: owner!.id });
    await c.settle();
    expect(thief!.hs.get('svc', 5)?.homeRegistrarId).toBe(owner!.id);
    const refusals: string[] = [];
    owner!.server.events.on('refused', (r) => refusals.push(r.error.message));
    // The peer claims the PE (as if it had re-registered there).
    thief!.hs.register('svc', pe(5, thief!.id), { ownerId: thief!.id });
    await c.advance(50);
    expect(owner!.hs.get('svc', 5)?.homeRegistrarId).toBe(owner!.id);
    expect(refusals.some((m) => m.includes('live ASAP association'))).toBe(true);
    // Once the owner no longer holds it, the PE follows its new registration.
    held = false;
    thief!.hs.register('svc', pe(5, thief!.id, 7001), { ownerId: thief!.id });
    await c.advance(50);
    expect(owner!.hs.get('svc', 5)?.homeRegistrarId).toBe(thief!.id);
  });
});
