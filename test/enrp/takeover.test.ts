import { afterEach, describe, expect, it } from 'vitest';
import type { PoolElementEntry } from '../../lib/handlespace/index.js';
import { checksums, createCluster, fingerprint, pe, peSet, TEST_TIMERS, type Cluster, type ClusterNode } from './cluster.js';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.teardown();
  cluster = undefined;
});

function populate(nodes: ClusterNode[], perNode: number): void {
  let id = 1;
  for (const n of nodes) for (let k = 0; k < perNode; k++, id++) n.hs.register(`pool-${id % 3}`, pe(id, n.id), { ownerId: n.id });
}

describe('ENRP takeover', () => {
  it("enrp - a dead registrar's PEs end owned by exactly one survivor, everywhere, none lost", async () => {
    cluster = createCluster();
    const nodes = await cluster.spawn(5);
    populate(nodes, 20);
    await cluster.settle();
    const before = peSet(nodes[0]!.hs);
    const events: { by: number; from: number; entries: readonly PoolElementEntry[] }[] = [];
    for (const n of nodes) n.server.events.on('takeover', (from, entries) => events.push({ by: n.id, from, entries }));
    const victim = nodes[2]!;
    const t0 = cluster.clock.now();
    await cluster.kill(2);
    await cluster.until(() => cluster!.live().every((n) => n.hs.ownedCount(victim.id) === 0) && cluster!.converged(), 30_000, 'takeover');
    const took = cluster.clock.now() - t0;
    expect(events).toHaveLength(1);
    const winner = events[0]!;
    expect(winner.from).toBe(victim.id);
    expect(winner.entries).toHaveLength(20);
    // Silence + probe + acks, within the timers.
    expect(took).toBeLessThanOrEqual(3_000 + 2_000 + 1_000 + 1_000);
    for (const n of cluster.live()) {
      expect(peSet(n.hs)).toEqual(before);
      expect(n.hs.ownedCount(winner.by)).toBe(40);
      expect(n.server.peers().map((p) => p.id)).not.toContain(victim.id);
    }
  });

  it('enrp - two survivors racing for a takeover resolve it by id (lower id wins)', async () => {
    cluster = createCluster();
    const nodes = await cluster.spawn(3);
    populate(nodes, 10);
    await cluster.settle();
    const events: number[] = [];
    for (const n of nodes) n.server.events.on('takeover', () => events.push(n.id));
    await cluster.kill(2);
    // Both survivors hear the same silence at the same time, so both initiate.
    await cluster.until(() => nodes[0]!.hs.ownedCount(3) === 0 && nodes[1]!.hs.ownedCount(3) === 0, 30_000, 'takeover');
    await cluster.settle();
    expect(events).toEqual([1]);
    for (const n of cluster.live()) {
      expect(n.hs.ownedCount(1)).toBe(20);
      expect(n.hs.ownedCount(2)).toBe(10);
    }
  });

  it('enrp - a registrar cut off from all its peers takes none of them over; they take it over', async () => {
    cluster = createCluster();
    const nodes = await cluster.spawn(3);
    populate(nodes, 4);
    await cluster.settle();
    cluster.partition([2], [0, 1]);
    await cluster.advance(20_000);
    expect(nodes[2]!.server.isolated).toBe(true);
    expect(nodes[0]!.server.isolated).toBe(false);
    // The cut-off one keeps its view of the others' PEs (the PEs can still reach it): taking them
    // over would make it their home, and the registrars they left would delete them.
    expect(nodes[2]!.server.status().counters.takeovers).toBe(0);
    expect(nodes[2]!.hs.ownedCount(nodes[0]!.id) + nodes[2]!.hs.ownedCount(nodes[1]!.id)).toBe(8);
    // The two that still hear each other take its PEs over.
    expect(nodes[0]!.hs.ownedCount(nodes[2]!.id)).toBe(0);
    expect(nodes[0]!.server.status().counters.takeovers + nodes[1]!.server.status().counters.takeovers).toBe(1);
    cluster.heal();
    await cluster.settle(60_000);
    expect(nodes[2]!.server.isolated).toBe(false);
  });

  it('enrp - a registrar whose peers went silent one after another (the first dropped long before) takes the last one over neither', async () => {
    cluster = createCluster();
    const nodes = await cluster.spawn(3);
    nodes[1]!.hs.register('pool', pe(1, nodes[1]!.id), { ownerId: nodes[1]!.id });
    await cluster.settle();
    // Registrar 1 (owning nothing) goes silent first and is dropped; registrar 2 several seconds later.
    cluster.partition([2], [0]);
    await cluster.until(() => nodes[2]!.server.peers().every((p) => p.id !== nodes[0]!.id), 30_000, 'registrar 1 dropped');
    await cluster.advance(8_000);
    cluster.partition([2], [1]);
    await cluster.advance(20_000);
    expect(nodes[2]!.server.isolated).toBe(true);
    expect(nodes[2]!.server.status().counters.takeovers).toBe(0);
    expect(nodes[2]!.hs.get('pool', 1)?.homeRegistrarId).toBe(nodes[1]!.id);
    cluster.heal();
    await cluster.settle(60_000);
  });

  it('enrp - a registrar that took a silent peer over and then loses its last peer too is isolated and takes that one over neither', async () => {
    cluster = createCluster();
    const nodes = await cluster.spawn(3);
    nodes[0]!.hs.register('pool', pe(1, nodes[0]!.id), { ownerId: nodes[0]!.id });
    nodes[1]!.hs.register('pool', pe(2, nodes[1]!.id), { ownerId: nodes[1]!.id });
    nodes[2]!.hs.register('pool', pe(3, nodes[2]!.id), { ownerId: nodes[2]!.id });
    await cluster.settle();
    // Registrar 2 is cut off; 1 takes it over with 3's ack (both stop hearing it).
    cluster.partition([1], [0, 2]);
    await cluster.until(() => nodes[0]!.hs.ownedCount(nodes[1]!.id) === 0 && nodes[2]!.hs.ownedCount(nodes[1]!.id) === 0, 30_000, 'registrar 2 taken over');
    expect(nodes[0]!.server.status().counters.takeovers + nodes[2]!.server.status().counters.takeovers).toBe(1);
    // A few seconds on, 1 and 3 lose each other too: each is now alone, and cannot tell whether the other died.
    await cluster.advance(5_000);
    cluster.partition([0], [2]);
    await cluster.advance(20_000);
    for (const i of [0, 2]) {
      // Its only peer left went silent right after another: it counts itself cut off (a resolution
      // it cannot answer is not final), and leaves the other's PEs with their home.
      expect(nodes[i]!.server.isolated).toBe(true);
      expect(nodes[i]!.hs.get('pool', 3 - i)?.homeRegistrarId).toBe(nodes[2 - i]!.id);
    }
    expect(nodes[0]!.server.status().counters.takeovers + nodes[2]!.server.status().counters.takeovers).toBe(1);
    cluster.heal();
    await cluster.settle(60_000);
    expect(nodes[0]!.server.isolated || nodes[2]!.server.isolated).toBe(false);
  });

  it('enrp - partition 2|3 then heal converges: homes keep their PEs, takeovers yield to the live home', async () => {
    cluster = createCluster();
    const nodes = await cluster.spawn(5);
    populate(nodes, 10);
    await cluster.settle();
    const original = fingerprint(nodes[0]!.hs);
    cluster.partition([0, 1], [2, 3, 4]);
    // Long enough for each side to take over the other.
    await cluster.advance(15_000);
    expect(nodes[0]!.hs.ownedCount(3)).toBe(0);
    expect(nodes[2]!.hs.ownedCount(1)).toBe(0);
    expect(peSet(nodes[0]!.hs)).toHaveLength(50);
    cluster.heal();
    await cluster.settle(60_000);
    // Every PE is back with its live home, on every registrar.
    for (const n of nodes) {
      expect(fingerprint(n.hs)).toEqual(original);
      expect(checksums(n.hs)).toEqual(checksums(nodes[0]!.hs));
    }
  });

  it('enrp - a registrar resumed after a pause learns that PEs which re-registered with its taker are no longer its own', async () => {
    // Which PEs each registrar still has a live ASAP association with (its registrar would answer).
    const held = [new Set<number>(), new Set<number>(), new Set<number>()];
    cluster = createCluster({ initFor: (i) => ({ holdsPoolElement: (_h, id) => held[i]!.has(id) }) });
    const nodes = await cluster.spawn(3);
    for (let id = 1; id <= 6; id++) {
      nodes[0]!.hs.register('pool', pe(id, nodes[0]!.id), { ownerId: nodes[0]!.id });
      held[0]!.add(id);
    }
    await cluster.settle();
    // Registrar 1 freezes: its peers take its PEs over.
    cluster.partition([0], [1, 2]);
    await cluster.until(() => nodes[1]!.hs.ownedCount(nodes[0]!.id) === 0 && nodes[2]!.hs.ownedCount(nodes[0]!.id) === 0, 30_000, 'takeover');
    const taker = nodes.find((n) => n.index > 0 && n.hs.ownedCount(n.id) === 6)!;
    // PEs 1-4 answer the taker's H-bit keep-alive and re-register there, closing their old association;
    // PEs 5-6 cannot be reached by it and stay with registrar 1.
    for (let id = 1; id <= 4; id++) {
      taker.hs.register('pool', pe(id, taker.id), { ownerId: taker.id });
      held[0]!.delete(id);
      held[taker.index]!.add(id);
    }
    cluster.heal();
    await cluster.settle(60_000);
    for (const n of nodes) {
      expect(
        n.hs
          .owned(taker.id)
          .map((e) => e.identifier)
          .sort(),
      ).toEqual([1, 2, 3, 4]);
      expect(
        n.hs
          .owned(nodes[0]!.id)
          .map((e) => e.identifier)
          .sort(),
      ).toEqual([5, 6]);
    }
  });

  /**
   * Registrar 1 (PEs 1-4) is cut off and taken over; every PE answers the taker's H-bit keep-alive and
   * re-registers there, so registrar 1 holds none. Registrar 1 stays cut off.
   */
  async function takenOverAndReregistered(): Promise<{ c: Cluster; nodes: ClusterNode[]; taker: ClusterNode; third: ClusterNode }> {
    const held = [new Set<number>(), new Set<number>(), new Set<number>()];
    const c = createCluster({ initFor: (i) => ({ holdsPoolElement: (_h, id) => held[i]!.has(id) }) });
    cluster = c;
    const nodes = await c.spawn(3);
    for (let id = 1; id <= 4; id++) {
      nodes[0]!.hs.register('pool', pe(id, nodes[0]!.id), { ownerId: nodes[0]!.id });
      held[0]!.add(id);
    }
    await c.settle();
    c.partition([0], [1, 2]);
    await c.until(() => nodes[1]!.hs.ownedCount(nodes[0]!.id) === 0 && nodes[2]!.hs.ownedCount(nodes[0]!.id) === 0, 30_000, 'takeover');
    const taker = nodes.find((n) => n.index > 0 && n.hs.ownedCount(n.id) === 4)!;
    const third = nodes.find((n) => n.index > 0 && n !== taker)!;
    for (let id = 1; id <= 4; id++) {
      taker.hs.register('pool', pe(id, taker.id), { ownerId: taker.id });
      held[0]!.delete(id);
      held[taker.index]!.add(id);
    }
    await c.advance(100);
    return { c, nodes, taker, third };
  }

  it("enrp - a third registrar's audit of a resumed registrar does not hand back PEs that re-registered with its taker", async () => {
    const { c, nodes, taker, third } = await takenOverAndReregistered();
    // Handed back to registrar 1, a PE would be deleted by it (its keep-alive fails) and lost there.
    const handedBack: number[] = [];
    const onChange = (e: { identifier: number; homeRegistrarId: number }): void => {
      if (e.homeRegistrarId === nodes[0]!.id) handedBack.push(e.identifier);
    };
    third.hs.events.on('added', onChange);
    third.hs.events.on('updated', onChange);
    // Registrar 1 hears the third registrar before its taker (links come back one at a time).
    c.heal();
    c.partition([0], [taker.index]);
    await c.advance(5_000);
    c.heal();
    await c.settle(60_000);
    expect(handedBack).toEqual([]);
    for (const n of nodes) {
      expect(
        n.hs
          .owned(taker.id)
          .map((e) => e.identifier)
          .sort(),
      ).toEqual([1, 2, 3, 4]);
    }
  });

  it("enrp - a third registrar's audit of a resumed registrar does not hand it PEs its taker holds, even once the taker is silent too", async () => {
    const { c, nodes, taker, third } = await takenOverAndReregistered();
    const hears = (n: ClusterNode, id: number): boolean =>
      n.server.peers().some((p) => p.id === id && c.clock.now() - p.lastHeard < TEST_TIMERS.maxTimeLastHeardMs);
    // The taker is paused in turn: the third stops hearing it (and, having seen registrar 1 taken over, takes it over neither).
    c.partition([taker.index], [third.index]);
    await c.until(() => !hears(third, taker.id), 30_000, 'taker silent at the third');
    const handedBack: number[] = [];
    const onChange = (e: { identifier: number; homeRegistrarId: number }): void => {
      if (e.homeRegistrarId === nodes[0]!.id) handedBack.push(e.identifier);
    };
    third.hs.events.on('added', onChange);
    third.hs.events.on('updated', onChange);
    // Registrar 1 resumes and reaches the third; its table still names itself home of the four PEs.
    c.heal();
    c.partition([taker.index], [0, third.index]);
    await c.until(() => hears(third, nodes[0]!.id), 30_000, 'registrar 1 heard by the third');
    await c.advance(2_000);
    expect(handedBack).toEqual([]);
    // Still listed, homed at the taker or at the third (which may have taken the silent taker over).
    expect([...third.hs.owned(taker.id), ...third.hs.owned(third.id)].map((e) => e.identifier).sort()).toEqual([1, 2, 3, 4]);
  });

  it('enrp - a PE that moved to a registrar while its old home was cut off stays listed when that registrar freezes and the old home takes it over (chaos seed 504)', async () => {
    cluster = createCluster();
    const c = cluster;
    const nodes = await c.spawn(3);
    const [a] = nodes as [ClusterNode];
    a.hs.register('pool', pe(1, a.id), { ownerId: a.id });
    // Each peer owns a PE too: a cut-off registrar keeps probing (rather than drops) a peer that owns some.
    for (const n of nodes.slice(1)) n.hs.register('other', pe(10 + n.id, n.id), { ownerId: n.id });
    await c.settle();
    // Registrar 1 is cut off; a peer takes it over and PE 1 re-registers there (its H-bit keep-alive).
    c.partition([0], [1, 2]);
    await c.until(() => nodes[1]!.hs.ownedCount(a.id) === 0 && nodes[2]!.hs.ownedCount(a.id) === 0, 30_000, 'registrar 1 taken over');
    const taker = nodes.find((n) => n.index > 0 && n.hs.get('pool', 1)?.homeRegistrarId === n.id)!;
    const third = nodes.find((n) => n.index > 0 && n !== taker)!;
    taker.hs.register('pool', pe(1, taker.id), { ownerId: taker.id });
    await c.advance(100);
    // Still cut off, registrar 1 times the PE out (it left that connection): its delete reaches no one.
    a.hs.deregister('pool', 1);
    // The taker freezes as registrar 1 comes back: registrar 1 takes it over with a copy lacking PE 1.
    const removed: number[] = [];
    third.hs.events.on('removed', (e) => removed.push(e.identifier));
    // The registrar adopts what a takeover event names: its H-bit keep-alive brings the PE there.
    const adopted: number[] = [];
    third.server.events.on('takeover', (_from, entries) => adopted.push(...entries.map((e) => e.identifier)));
    c.heal();
    c.partition([taker.index], [0, third.index]);
    await c.until(() => a.hs.ownedCount(taker.id) === 0 && third.hs.ownedCount(taker.id) === 0, 30_000, 'the taker taken over');
    await c.advance(10_000);
    // Deleted by the third's audit of registrar 1, PE 1 would be listed nowhere but at the frozen registrar.
    expect(removed).toEqual([]);
    for (const n of [a, third]) expect(n.hs.get('pool', 1)?.homeRegistrarId).toBe(third.id);
    expect(adopted).toContain(1);
  });

  it('enrp - a restarted registrar rejoins after being taken over', async () => {
    cluster = createCluster();
    const nodes = await cluster.spawn(3);
    populate(nodes, 10);
    await cluster.settle();
    await cluster.kill(1);
    await cluster.until(() => nodes[0]!.hs.ownedCount(2) === 0, 30_000, 'takeover');
    const fresh = await cluster.restart(1);
    await cluster.until(() => fresh.server.synchronised, 20_000, 'resync');
    await cluster.settle();
    expect(peSet(fresh.hs)).toHaveLength(30);
    expect(fresh.hs.ownedCount(fresh.id)).toBe(0);
    expect(fresh.server.peers().filter((p) => p.state === 'up')).toHaveLength(2);
  });
});
