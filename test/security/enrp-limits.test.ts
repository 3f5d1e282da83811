import { afterEach, describe, expect, it } from 'vitest';
import { createTransports, PPID, type Connection } from '../../lib/transport/index.js';
import type { Refusal } from '../../lib/enrp/index.js';
import { decodeEnrpMessage, encodeEnrpMessage } from '../../protocols/enrp/codec.js';
import { EnrpFlags, EnrpMessageType, HandleUpdateAction, type EnrpMessage } from '../../protocols/enrp/types.js';
import { ErrorCause, type PoolElementParameter } from '../../protocols/parameters/types.js';
import { createCluster, pe, type Cluster } from '../enrp/cluster.js';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.teardown();
  cluster = undefined;
});

const FAKE = 99;
const handle = new TextEncoder().encode('lim');
const wideHandle = new TextEncoder().encode('wide');

/** pe() with `n` addresses in an SCTP user transport (pool 'wide': a pool speaks one transport). */
function wide(identifier: number, home: number, n: number): PoolElementParameter {
  const p = pe(identifier, home);
  return {
    ...p,
    userTransport: { ...p.userTransport, protocol: 'sctp', addresses: Array.from({ length: n }, (_, i) => `10.${i >> 16}.${(i >> 8) & 0xff}.${i & 0xff}`) },
  };
}

/** A registrar of our own making on the memory network: says presence, then speaks raw ENRP. */
async function fakePeer(c: Cluster, url: string): Promise<{ send(m: EnrpMessage): Promise<void>; got: EnrpMessage[]; conn: Connection }> {
  const transport = createTransports({ tcp: false, memory: { network: c.net, name: '127.1.0.99' } }, { clock: c.clock });
  const connP = transport.connect(url, { ppid: PPID.ENRP });
  await c.advance(20);
  const conn = await connP;
  const got: EnrpMessage[] = [];
  conn.on('message', (b) => got.push(decodeEnrpMessage(b)));
  const send = async (m: EnrpMessage): Promise<void> => {
    conn.send(encodeEnrpMessage(m), PPID.ENRP);
    await c.advance(20);
  };
  await send({ type: EnrpMessageType.Presence, senderServerId: FAKE, receiverServerId: 0, checksum: 0, flags: EnrpFlags.ReplyRequired });
  return { send, got, conn };
}

const update = (element: PoolElementParameter): EnrpMessage => ({
  type: EnrpMessageType.HandleUpdate,
  senderServerId: FAKE,
  receiverServerId: 0,
  action: HandleUpdateAction.AddOrUpdate,
  handle,
  element,
});

describe("ENRP ingress holds a peer's PEs to the same limits as an ASAP registration", () => {
  it('enrp - a HANDLE_UPDATE beyond the limits is refused with Invalid Values; a life above the limit is clamped as ASAP clamps it', async () => {
    cluster = createCluster();
    const [target] = await cluster.spawn(1);
    await cluster.settle();
    const refusals: Refusal[] = [];
    target!.server.events.on('refused', (r) => refusals.push(r));
    const peer = await fakePeer(cluster, target!.url);

    await peer.send({ ...update(wide(1, FAKE, 33)), handle: wideHandle } as EnrpMessage);
    await peer.send(update({ ...pe(2, FAKE), asapTransport: wide(2, FAKE, 33).userTransport }));
    await peer.send({ ...update(pe(3, FAKE)), handle: new Uint8Array(1025) } as EnrpMessage);
    expect(refusals.map((r) => r.error.code)).toEqual(Array(3).fill('RSP_ERR_ENRP_REJECTED_ENTRY'));
    const errors = peer.got.filter((m) => m.type === EnrpMessageType.Error);
    expect(errors.map((m) => m.type === EnrpMessageType.Error && m.error[0]?.code)).toEqual(Array(3).fill(ErrorCause.InvalidValues));
    expect(target!.hs.size).toBe(0);

    // Within the limits: taken, with an infinite life clamped to the default hour.
    await peer.send({ ...update(wide(4, FAKE, 32)), handle: wideHandle } as EnrpMessage);
    expect(target!.hs.get(wideHandle, 4)?.registrationLife).toBe(3_600_000);
    peer.conn.abort();
  });

  it('enrp - mentor and audit pages: entries beyond the limits are refused, the rest is taken, and the audit is not repeated at the same checksum', async () => {
    cluster = createCluster();
    const [a, b] = await cluster.spawn(2);
    await cluster.settle();
    // Registrar 1 holds (through no ingress of ours) one PE beyond the limits next to good ones.
    for (let k = 1; k <= 3; k++) a!.hs.register(handle, pe(k, 1), { ownerId: 1 });
    expect(a!.hs.register(wideHandle, wide(9, 1, 40), { ownerId: 1 }).ok).toBe(true);
    await cluster.advance(3_000);
    const ids = (n: typeof a) =>
      n!.hs
        .poolElements(handle)
        .map((e) => e.identifier)
        .sort();
    // The update was refused; the audit at the next presences pulled the table once, refused it again, and stopped.
    expect(ids(b)).toEqual([1, 2, 3]);
    expect(b!.hs.has(wideHandle, 9)).toBe(false);
    const audits = b!.server.status().counters.audits;
    expect(audits).toBe(1);
    await cluster.advance(5_000);
    expect(b!.server.status().counters.audits).toBe(audits);

    // A third registrar joins with them as mentors: the page's good entries arrive, the wide one does not.
    const [c] = await cluster.spawn(1);
    await cluster.until(() => c!.server.synchronised, 30_000, 'sync');
    expect(ids(c)).toEqual([1, 2, 3]);
    expect(c!.hs.has(wideHandle, 9)).toBe(false);
  });

  it('enrp - a PE that no ENRP message can carry is logged and not sent; the registrar keeps serving its peers', async () => {
    cluster = createCluster();
    const [a, b] = await cluster.spawn(2);
    await cluster.settle();
    // 8,186 addresses: the PE fits an ASAP registration, its HANDLE_UPDATE does not fit 65,535 bytes.
    expect(a!.hs.register(wideHandle, wide(7, 1, 8186), { ownerId: 1 }).ok).toBe(true);
    a!.hs.register(handle, pe(8, 1), { ownerId: 1 });
    await cluster.advance(50);
    expect(b!.hs.has(handle, 8)).toBe(true);
    expect(b!.hs.has(wideHandle, 7)).toBe(false);
    // A joining registrar with it as mentor (registrar 2 out of its reach) still gets a full sync:
    // the entry no page can carry is skipped.
    cluster.partition([1], [2]);
    const [c] = await cluster.spawn(1);
    await cluster.until(() => c!.server.synchronised, 30_000, 'sync');
    expect(c!.server.status().mentorId).toBe(1);
    expect(c!.hs.has(handle, 8)).toBe(true);
  });
});
