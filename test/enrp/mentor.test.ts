/**
 * RFC 5355: a joining registrar takes its handlespace only from a configured
 * peer that answers on its configured URL, never from whoever dials it first.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createAcl } from '../../lib/registrar/index.js';
import type { PeerIdentity } from '../../lib/transport/index.js';
import { createCluster, pe, type Cluster } from './cluster.js';

const cert = (name: string): PeerIdentity => ({ kind: 'certificate', name, subject: `CN=${name}`, altNames: [], fingerprint256: name });

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.teardown();
  cluster = undefined;
});

const url = (i: number): string => `memory://127.1.0.${i + 1}:9901`;

describe('ENRP mentor', () => {
  it('enrp - a joining registrar is mentored by its configured peer, not by a registrar it never named that dials it first', async () => {
    // 0: the configured peer; 1: a registrar the newcomer does not know, which knows the newcomer; 2: the newcomer.
    const c = (cluster = createCluster({
      timers: { mentorDiscoveryMs: 10_000 },
      initFor: (i) => ({ peers: [[], [url(2)], [url(0)]][i]! }),
    }));
    const [configured, stranger] = await c.spawn(2);
    configured!.hs.register('svc', pe(1, configured!.id), { ownerId: configured!.id });
    // What the stranger claims the configured peer holds: a mentor's table may name any home.
    stranger!.hs.register('svc', pe(99, configured!.id), { ownerId: configured!.id });
    // The configured peer is out of reach while the stranger dials the newcomer.
    c.partition([0], [2]);
    const [fresh] = await c.spawn(1);
    let heldAtSync: boolean | undefined;
    fresh!.server.events.on('synchronised', () => (heldAtSync = fresh!.hs.has('svc', 99)));
    await c.until(() => fresh!.server.peers().some((p) => p.id === stranger!.id && p.state === 'up'), 5_000, 'stranger connected');
    await c.advance(500);
    expect(fresh!.server.status().mentorId).toBeUndefined();
    expect(fresh!.server.synchronised).toBe(false);
    c.heal();
    await c.until(() => fresh!.server.synchronised, 10_000, 'synchronised');
    expect(fresh!.server.status().mentorId).toBe(configured!.id);
    expect(heldAtSync).toBe(false);
    expect(fresh!.hs.has('svc', 1)).toBe(true);
  });

  it('enrp - with no configured peer answering, a registrar starts from its own handlespace and takes peers PEs only by audit', async () => {
    const c = (cluster = createCluster({ initFor: (i) => ({ peers: [[url(1)], []][i]! }) }));
    const [a] = await c.spawn(1);
    a!.hs.register('svc', pe(1, a!.id), { ownerId: a!.id });
    a!.hs.register('svc', pe(98, 7), { ownerId: 7 }); // homed at a registrar that is not there
    const [b] = await c.spawn(1);
    await c.until(() => b!.server.synchronised, 10_000, 'synchronised');
    expect(b!.server.status().mentorId).toBeUndefined();
    await c.until(() => b!.hs.has('svc', 1), 10_000, 'audit of its peer');
    expect(b!.hs.has('svc', 98)).toBe(false);
  });

  it('enrp - with an ACL, a configured URL served by an identity the ACL does not name as a registrar is no mentor', async () => {
    const acl = createAcl({ rules: [{ identity: 'reg-*', roles: ['registrar'] }] });
    // 0: configured, but its certificate names no registrar; 1: configured and authorized; 2: the newcomer.
    const c = (cluster = createCluster({
      timers: { mentorDiscoveryMs: 10_000 },
      identity: (i) => cert(i === 0 ? 'pe-impostor' : `reg-${i}`),
      init: { authorizePeer: (id, sid) => acl.allows(id, 'registrar', undefined, sid) },
      initFor: (i) => ({ peers: [[], [], [url(0), url(1)]][i]! }),
    }));
    const [impostor, real] = await c.spawn(2);
    impostor!.hs.register('svc', pe(99, real!.id), { ownerId: real!.id });
    real!.hs.register('svc', pe(1, real!.id), { ownerId: real!.id });
    const [fresh] = await c.spawn(1);
    await c.until(() => fresh!.server.synchronised, 10_000, 'synchronised');
    expect(fresh!.server.status().mentorId).toBe(real!.id);
    expect(fresh!.hs.has('svc', 99)).toBe(false);
    expect(fresh!.server.peers().map((p) => p.id)).toEqual([real!.id]);
  });
});
