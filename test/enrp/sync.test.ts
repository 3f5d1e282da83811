import { afterEach, describe, expect, it } from 'vitest';
import { checksums, createCluster, fingerprint, pe, peSet, type Cluster } from './cluster.js';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.teardown();
  cluster = undefined;
});

describe('ENRP peer table and sync', () => {
  it('enrp - 5 registrars with 1,000 PEs registered at different homes end with identical handlespaces', async () => {
    cluster = createCluster();
    const nodes = await cluster.spawn(5);
    // Half before the cluster has met (found by audit), half after (handle updates).
    for (let k = 0; k < 500; k++) {
      const home = nodes[k % 5]!;
      expect(home.hs.register(`pool-${k % 7}`, pe(k + 1, home.id), { ownerId: home.id }).ok).toBe(true);
    }
    await cluster.settle();
    for (const n of nodes) expect(n.server.peers().filter((p) => p.state === 'up')).toHaveLength(4);
    for (let k = 500; k < 1000; k++) {
      const home = nodes[k % 5]!;
      home.hs.register(`pool-${k % 7}`, pe(k + 1, home.id), { ownerId: home.id });
    }
    await cluster.settle();
    await cluster.advance(1_500); // one more heartbeat: presences carry the final checksums
    const ref = fingerprint(nodes[0]!.hs);
    expect(ref).toHaveLength(1000);
    for (const n of nodes) {
      expect(fingerprint(n.hs)).toEqual(ref);
      expect(checksums(n.hs)).toEqual(checksums(nodes[0]!.hs));
      expect(n.hs.ownedCount(n.id)).toBe(200);
      const me = n.server.peers();
      for (const p of me) expect(p.checksum).toBe(n.hs.checksum(p.id));
    }
  });

  it('enrp - a registrar still looking for a mentor when a configured peer dials it is synchronised by that peer at once, not after a refused request and a timeout', async () => {
    // Both know each other's URL; B is not up when A starts.
    cluster = createCluster({ initFor: (i) => ({ peers: [`memory://127.1.0.${2 - i}:9901`] }) });
    const [a] = await cluster.spawn(1);
    a!.hs.register('pool', pe(1, a!.id), { ownerId: a!.id });
    await cluster.advance(500);
    // B dials A first; A dials B's configured URL at once to prove it (a mentor must be a configured peer).
    const [b] = await cluster.spawn(1);
    b!.hs.register('pool', pe(2, b!.id), { ownerId: b!.id });
    const refused: string[] = [];
    b!.server.events.on('refused', ({ error }) => refused.push(error.code));
    const took = await cluster.until(() => a!.server.synchronised && b!.server.synchronised, 10_000, 'both synchronised');
    expect(took).toBeLessThan(500);
    expect(refused).toEqual([]);
    await cluster.settle();
    expect(peSet(a!.hs)).toEqual(peSet(b!.hs));
  });

  it('enrp - deregistrations and expiries of owned PEs reach every peer, and peer updates do not echo', async () => {
    cluster = createCluster();
    const nodes = await cluster.spawn(3);
    await cluster.settle();
    const [a, b] = [nodes[0]!, nodes[1]!];
    a.hs.register('echo', pe(1, a.id), { ownerId: a.id });
    a.hs.register('echo', { ...pe(2, a.id), registrationLife: 5_000 }, { ownerId: a.id });
    await cluster.settle();
    const sentBefore = b.server.status().counters.updatesSent;
    expect(b.hs.get('echo', 1)?.homeRegistrarId).toBe(a.id);
    a.hs.deregister('echo', 1);
    await cluster.advance(6_000);
    await cluster.settle();
    for (const n of nodes) expect(peSet(n.hs)).toEqual([]);
    // b applied a's updates but sent none of its own.
    expect(b.server.status().counters.updatesSent).toBe(sentBefore);
  });

  it('enrp - a restarted registrar resyncs from a mentor in pages and is synchronised only after the last page', async () => {
    cluster = createCluster({ maxPageElements: 10 });
    const nodes = await cluster.spawn(3);
    await cluster.settle();
    for (let k = 0; k < 90; k++) nodes[k % 2]!.hs.register(`p${k % 4}`, pe(k + 1, nodes[k % 2]!.id), { ownerId: nodes[k % 2]!.id });
    await cluster.settle();
    const fresh = await cluster.restart(2, { start: false });
    const sizes: number[] = [];
    let syncedAt = -1;
    fresh.hs.events.on('added', () => {
      if (syncedAt < 0) sizes.push(fresh.hs.size);
    });
    fresh.server.events.on('synchronised', () => {
      syncedAt = fresh.hs.size;
    });
    await fresh.server.start();
    expect(fresh.server.synchronised).toBe(false);
    await cluster.until(() => fresh.server.synchronised, 20_000, 'synchronised');
    // 90 PEs in pages of 10: it saw partial handlespaces while not synchronised.
    expect(syncedAt).toBe(90);
    expect(sizes).toContain(10);
    expect(sizes.filter((s) => s < 90).length).toBeGreaterThan(0);
    expect(fresh.server.status().mentorId).toBeDefined();
    await cluster.settle();
    expect(fingerprint(fresh.hs)).toEqual(fingerprint(nodes[0]!.hs));
  });
});
