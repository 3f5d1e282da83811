import { afterEach, describe, expect, it } from 'vitest';
import { createTransports, PPID, type Connection } from '../../lib/transport/index.js';
import type { Refusal } from '../../lib/enrp/index.js';
import { decodeEnrpMessage, encodeEnrpMessage } from '../../protocols/enrp/codec.js';
import { EnrpFlags, EnrpMessageType, HandleUpdateAction, type EnrpMessage } from '../../protocols/enrp/types.js';
import { ErrorCause } from '../../protocols/parameters/types.js';
import { frameMessage } from '../transport/util.js';
import { createCluster, fingerprint, pe, type Cluster } from './cluster.js';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.teardown();
  cluster = undefined;
});

const FAKE = 99;

describe('ENRP bad input', () => {
  it('enrp - garbage, unknown senders, foreign-owned updates and takeovers of live peers are refused; state and connections survive', async () => {
    cluster = createCluster();
    const nodes = await cluster.spawn(3);
    for (let k = 1; k <= 9; k++) nodes[k % 3]!.hs.register('bad', pe(k, nodes[k % 3]!.id), { ownerId: nodes[k % 3]!.id });
    await cluster.settle();
    const target = nodes[0]!;
    const before = fingerprint(target.hs);
    const refusals: Refusal[] = [];
    target.server.events.on('refused', (r) => refusals.push(r));

    const c = cluster;
    const transport = createTransports({ tcp: false, memory: { network: c.net, name: '127.1.0.99' } }, { clock: c.clock });
    const connP = transport.connect(target.url, { ppid: PPID.ENRP });
    await c.advance(20);
    const conn: Connection = await connP;
    const got: EnrpMessage[] = [];
    conn.on('message', (b) => got.push(decodeEnrpMessage(b)));
    const send = async (m: EnrpMessage | Uint8Array): Promise<void> => {
      conn.send(m instanceof Uint8Array ? m : encodeEnrpMessage(m), PPID.ENRP);
      await c.advance(20);
    };
    const errors = (): EnrpMessage[] => got.filter((m) => m.type === EnrpMessageType.Error);

    // 1. Garbage: an unknown message type, and a presence with a broken body.
    await send(frameMessage({ type: 0x7f, payload: new Uint8Array(12) }));
    await send(frameMessage({ type: EnrpMessageType.Presence, payload: new Uint8Array([0, 0, 0, 1, 0, 0, 0, 0, 0xff]) }));
    expect(refusals.map((r) => r.error.code)).toEqual(['RSP_ERR_ENRP_MALFORMED', 'RSP_ERR_ENRP_MALFORMED']);
    const e0 = errors()[0];
    expect(e0?.type === EnrpMessageType.Error && e0.error[0]?.code).toBe(ErrorCause.UnrecognizedMessage);

    // 2. An update from a registrar we never heard a presence from.
    const update = (sender: number, home: number, id: number, action: HandleUpdateAction = HandleUpdateAction.AddOrUpdate): EnrpMessage => ({
      type: EnrpMessageType.HandleUpdate,
      senderServerId: sender,
      receiverServerId: 0,
      action,
      handle: new TextEncoder().encode('bad'),
      element: pe(id, home),
    });
    await send(update(FAKE, FAKE, 500));
    expect(refusals.at(-1)?.error.code).toBe('RSP_ERR_ENRP_UNKNOWN_SENDER');

    // Introduce ourselves; now we are a peer.
    await send({ type: EnrpMessageType.Presence, senderServerId: FAKE, receiverServerId: 0, checksum: 0xffff, flags: EnrpFlags.ReplyRequired });
    expect(got.some((m) => m.type === EnrpMessageType.Presence && m.senderServerId === target.id)).toBe(true);

    // 3. Updates for PEs another registrar owns: an add claiming registrar 3 as home, a delete of registrar 2's PE.
    await send(update(FAKE, 3, 501));
    expect(refusals.at(-1)?.error.code).toBe('RSP_ERR_ENRP_NOT_OWNER');
    const owned2 = target.hs.owned(2)[0]!;
    await send(update(FAKE, FAKE, owned2.identifier, HandleUpdateAction.Delete));
    expect(refusals.at(-1)?.error.code).toBe('RSP_ERR_ENRP_NOT_OWNER');

    // 4. A takeover of a live registrar (2), and of the receiver itself.
    const init = (t: number): EnrpMessage => ({ type: EnrpMessageType.InitTakeover, senderServerId: FAKE, receiverServerId: target.id, targetServerId: t });
    await send(init(2));
    expect(refusals.at(-1)?.error.code).toBe('RSP_ERR_ENRP_TAKEOVER_REFUSED');
    await send(init(target.id));
    expect(refusals.at(-1)?.error.code).toBe('RSP_ERR_ENRP_TAKEOVER_REFUSED');
    await send({ type: EnrpMessageType.TakeoverServer, senderServerId: FAKE, receiverServerId: target.id, targetServerId: 2 });
    expect(refusals.at(-1)?.error.code).toBe('RSP_ERR_ENRP_TAKEOVER_REFUSED');
    expect(got.some((m) => m.type === EnrpMessageType.InitTakeoverAck)).toBe(false);
    expect(errors().length).toBeGreaterThanOrEqual(6);

    // Nothing changed, the connection still answers, the cluster still works.
    expect(fingerprint(target.hs)).toEqual(before);
    expect(conn.status).toBe('open');
    const n = got.length;
    await send({ type: EnrpMessageType.Presence, senderServerId: FAKE, receiverServerId: target.id, checksum: 0xffff, flags: EnrpFlags.ReplyRequired });
    expect(got.slice(n).some((m) => m.type === EnrpMessageType.Presence)).toBe(true);
    nodes[1]!.hs.register('bad', pe(777, 2), { ownerId: 2 });
    await c.advance(50);
    expect(target.hs.get('bad', 777)?.homeRegistrarId).toBe(2);
    conn.abort();
  });
});
