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

  it('a stale claim refused by the live home is undone at every peer, so its later removal deletes the PE nowhere', async () => {
    // Registrar 1 resumes from a pause and answers a registration the PE gave up on; the PE is
    // registered with registrar 3 meanwhile, over an association registrar 3 holds.
    const held = [new Set<number>(), new Set<number>(), new Set<number>([9])];
    cluster = createCluster({ initFor: (i) => ({ holdsPoolElement: (_h, id) => held[i]!.has(id) }) });
    const c = cluster;
    const [stale, bystander, home] = await c.spawn(3);
    home!.hs.register('svc', pe(9, home!.id), { ownerId: home!.id });
    await c.settle();
    const lost: number[] = [];
    bystander!.hs.events.on('removed', (e) => lost.push(e.identifier));
    held[0]!.add(9);
    stale!.hs.register('svc', pe(9, stale!.id), { ownerId: stale!.id });
    // Its connection turns out closed right after: it holds nothing.
    held[0]!.delete(9);
    await c.advance(200);
    // Its keep-alive timeout then removes the PE if it still thinks it owns it.
    if (stale!.hs.get('svc', 9)?.homeRegistrarId === stale!.id) stale!.hs.deregister('svc', 9);
    await c.advance(200);
    expect(lost).toEqual([]);
    for (const n of [stale!, bystander!, home!]) expect(n.hs.get('svc', 9)?.homeRegistrarId).toBe(home!.id);
  });
});
