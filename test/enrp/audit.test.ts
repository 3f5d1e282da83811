import { afterEach, describe, expect, it } from 'vitest';
import type { AuditRepair } from '../../lib/enrp/index.js';
import { PolicyType } from '../../protocols/parameters/types.js';
import { createCluster, fingerprint, pe, type Cluster } from './cluster.js';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.teardown();
  cluster = undefined;
});

describe('ENRP audit', () => {
  it('enrp - an update of transport, policy or load lost with a dropped connection is repaired once the peers reconnect (the checksums agree)', async () => {
    cluster = createCluster();
    const [a, b] = await cluster.spawn(2);
    a!.hs.register('p', { ...pe(1, a!.id, 7001), policy: { type: PolicyType.LeastUsed, load: 0 } }, { ownerId: a!.id });
    await cluster.settle();
    // A's host drops off the network for a moment (connections reset, no takeover): its update goes nowhere.
    cluster.net.kill(a!.host);
    const moved = { ...pe(1, a!.id, 7999), policy: { type: PolicyType.LeastUsed, load: 0x4000_0000 } };
    expect(a!.hs.register('p', moved, { ownerId: a!.id }).ok).toBe(true);
    await cluster.advance(500);
    cluster.net.revive(a!.host);
    expect(b!.hs.checksum(a!.id)).toBe(a!.hs.checksum(a!.id));
    await cluster.until(() => b!.hs.get('p', 1)?.userTransport.port === 7999, 10_000, 'transport repaired');
    expect(b!.hs.get('p', 1)?.policy).toEqual(moved.policy);
  });

  it("enrp - a corrupted copy (foreign PE removed, bogus one added) is repaired after the owner's next presence", async () => {
    cluster = createCluster();
    const nodes = await cluster.spawn(3);
    for (let k = 1; k <= 30; k++) nodes[k % 3]!.hs.register(`a${k % 2}`, pe(k, nodes[k % 3]!.id), { ownerId: nodes[k % 3]!.id });
    await cluster.settle();
    const good = fingerprint(nodes[1]!.hs);
    const victim = nodes[0]!;
    const owner = nodes[1]!;
    const foreign = victim.hs.owned(owner.id)[0]!;
    victim.hs.deregister(foreign.handle, foreign.identifier);
    victim.hs.register('bogus', pe(9999, owner.id), { ownerId: owner.id });
    expect(victim.hs.checksum(owner.id)).not.toBe(owner.hs.checksum(owner.id));
    const repairs: AuditRepair[] = [];
    victim.server.events.on('audit-repair', (r) => repairs.push(r));
    // One heartbeat cycle brings the owner's presence.
    await cluster.until(() => repairs.length > 0, 2_000, 'audit repair');
    expect(repairs[0]).toEqual({ peerId: owner.id, added: 1, removed: 1 });
    expect(fingerprint(victim.hs)).toEqual(good);
    expect(victim.hs.get('bogus', 9999)).toBeUndefined();
    // The others never saw the corruption.
    expect(fingerprint(nodes[2]!.hs)).toEqual(good);
  });
});
