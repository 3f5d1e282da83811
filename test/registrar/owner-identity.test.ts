/**
 * RFC 5355 across a cluster: an identifier owned by a live PE can be
 * registered again only by the identity that owns it, at any registrar;
 * ENRP carries the owner identity (rserpool's PE Owner Identity parameter).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCause } from '../../protocols/parameters/types.js';
import { ownerIdentityOf } from '../../lib/transport/index.js';
import { createCluster, pe, type Cluster, type ClusterNode } from '../enrp/cluster.js';
import { createIdentityCluster, psk, type IdentityCluster } from './identity-cluster.js';

let cluster: IdentityCluster | undefined;
afterEach(async () => {
  await cluster?.teardown();
  cluster = undefined;
});

const ID = 0x42;
const A = psk('pe-a');
const B = psk('pe-b');

describe('PE identifier ownership across the cluster', () => {
  it("another identity cannot take a live PE's identifier at another registrar; the owner itself can move there", async () => {
    const c = (cluster = await createIdentityCluster(3));
    const [r1, r2, r3] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0], (typeof c.nodes)[0]];
    const a = await c.client(0, '10.0.0.1', A);
    expect((await c.register(a, ID, 7001)).error).toBeUndefined();
    const ownerA = ownerIdentityOf(A);
    // ENRP carries the owner identity with the PE to every registrar.
    await c.until(() => [r2, r3].every((n) => n.registrar.handlespace.get('svc', ID)?.ownerIdentity === ownerA), 5_000, 'owner identity replicated');

    for (const [i, node] of [
      [1, r2],
      [2, r3],
    ] as const) {
      const b = await c.client(i, `10.0.0.${2 + i}`, B);
      const res = await c.register(b, ID, 7002);
      expect(res.flags, `at registrar ${i + 1}`).toBe(1);
      expect(res.error?.[0]?.code).toBe(ErrorCause.RejectionDueToSecurityConsiderations);
      expect(node.registrar.counters.refusedByAcl).toBe(1);
    }
    await c.advance(2_000);
    // Every registrar still resolves the identifier to A's PE, homed where A registered.
    for (const n of c.nodes) {
      const e = n.registrar.handlespace.get('svc', ID);
      expect([e?.homeRegistrarId, e?.userTransport.port]).toEqual([r1.id, 7001]);
    }

    // A loses its registrar's connection and registers at another one: the same identity moves.
    a.conn.abort();
    const a2 = await c.client(1, '10.0.0.1', A);
    expect((await c.register(a2, ID, 7001)).error).toBeUndefined();
    await c.until(() => c.nodes.every((n) => n.registrar.handlespace.get('svc', ID)?.homeRegistrarId === r2.id), 5_000, 'moved to registrar 2');
    expect(r1.registrar.handlespace.get('svc', ID)?.ownerIdentity).toBe(ownerA);
  });

  it('without identities a registration at another registrar moves the PE as before', async () => {
    const c = (cluster = await createIdentityCluster(2, { secure: false }));
    const [r1, r2] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];
    const a = await c.client(0, '10.0.0.1');
    expect((await c.register(a, ID, 7001)).error).toBeUndefined();
    await c.until(() => r2.registrar.handlespace.has('svc', ID), 5_000, 'replicated');
    expect(r2.registrar.handlespace.get('svc', ID)?.ownerIdentity).toBeUndefined();
    const b = await c.client(1, '10.0.0.2');
    expect((await c.register(b, ID, 7002)).error).toBeUndefined();
    expect(r2.registrar.handlespace.get('svc', ID)?.homeRegistrarId).toBe(r2.id);
    expect(r1.registrar.counters.refusedByAcl + r2.registrar.counters.refusedByAcl).toBe(0);
  });
});

describe('PE owner identity in ENRP tables', () => {
  let enrp: Cluster | undefined;
  afterEach(async () => {
    await enrp?.teardown();
    enrp = undefined;
  });

  it('a registrar that joins learns each PE with its owner identity from its mentor, and from an audit', async () => {
    const c = (enrp = createCluster({ maxPageElements: 2 }));
    const [n0] = await c.spawn(1);
    const owner = ownerIdentityOf(A)!;
    for (let id = 1; id <= 5; id++) n0!.hs.register('svc', pe(id, n0!.id), { ownerId: n0!.id, ...(id === 3 ? {} : { ownerIdentity: owner }) });
    const [n1] = await c.spawn(1);
    await c.settle();
    const owners = (n: ClusterNode): (string | undefined)[] => [1, 2, 3, 4, 5].map((id) => n.hs.get('svc', id)?.ownerIdentity);
    expect(owners(n1!)).toEqual([owner, owner, undefined, owner, owner]);
    // Lost on n1 (as if an update never arrived): the audit of n0's PEs brings it back with its owner.
    n1!.hs.deregister('svc', 4);
    await c.until(() => n1!.hs.get('svc', 4)?.ownerIdentity === owner, 10_000, 'audit repair');
  });
});
