import { afterEach, describe, expect, it } from 'vitest';
import type { AuditRepair } from '../../lib/enrp/index.js';
import { createCluster, fingerprint, pe, type Cluster } from './cluster.js';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.teardown();
  cluster = undefined;
});

describe('ENRP audit', () => {
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
