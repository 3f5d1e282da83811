import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { EnrpMessageType, HandleUpdateAction } from '../../protocols/enrp/types.js';
import { encodeEnrpMessage } from '../../protocols/enrp/codec.js';
import { ErrorCause } from '../../protocols/parameters/types.js';
import { createAcl, loadAcl, type Registrar } from '../../lib/registrar/index.js';
import { createTransports, PPID, type PeerIdentity } from '../../lib/transport/index.js';
import { createCluster, fingerprint, pe, type Cluster } from '../enrp/cluster.js';
import { createLab, element, RawClient, te, type Lab } from './helpers.js';

const psk = (name: string): PeerIdentity => ({ kind: 'psk', name });

const POLICY = {
  rules: [
    { identity: 'reg-*', roles: ['registrar'] },
    { identity: 'tftp-?', roles: ['pe', 'pu'], handles: ['tftp', 'tftp-*'] },
    { identity: '*', roles: ['pu'], handles: ['*'] },
    { anonymous: true, roles: ['pu'], handles: ['public'] },
  ],
};

describe('ACL policy', () => {
  it('allows what a rule names and nothing else', () => {
    const acl = createAcl(POLICY);
    expect(acl.allows(psk('tftp-1'), 'pe', te('tftp'))).toBe(true);
    expect(acl.allows(psk('tftp-1'), 'pe', te('tftp-eu'))).toBe(true);
    expect(acl.allows(psk('tftp-1'), 'pe', te('echo'))).toBe(false);
    expect(acl.allows(psk('tftp-12'), 'pe', te('tftp'))).toBe(false);
    expect(acl.allows(psk('reg-a'), 'registrar')).toBe(true);
    expect(acl.allows(psk('tftp-1'), 'registrar')).toBe(false);
    expect(acl.allows(undefined, 'registrar')).toBe(false);
    expect(acl.allows(psk('anyone'), 'pu', te('echo'))).toBe(true);
    expect(acl.allows(undefined, 'pu', te('public'))).toBe(true);
    expect(acl.allows(undefined, 'pu', te('echo'))).toBe(false);
    expect(acl.allows(undefined, 'pe', te('public'))).toBe(false);
    // Globs are anchored and dots are literal.
    expect(createAcl({ rules: [{ identity: 'a.b', roles: ['pu'], handles: ['x'] }] }).allows(psk('aXb'), 'pu', te('x'))).toBe(false);
  });

  it('refuses a malformed policy with the rule and the reason', () => {
    const bad: [unknown, RegExp][] = [
      [{}, /expected \{ rules/],
      [{ rules: [], extra: 1 }, /unknown key 'extra'/],
      [{ rules: [{ roles: ['pu'], handles: ['*'] }] }, /rule 1: give 'identity'/],
      [{ rules: [{ identity: 'x', anonymous: true, roles: ['pu'], handles: ['*'] }] }, /rule 1: give 'identity'/],
      [{ rules: [{ identity: 'x', roles: ['admin'] }] }, /unknown role 'admin'/],
      [{ rules: [{ identity: 'x', roles: ['pe'] }] }, /'handles' \(globs\) is required/],
      [{ rules: [{ anonymous: true, roles: ['registrar'] }] }, /must prove its identity/],
      [{ rules: [{ identity: 'x', roles: ['pu'], handles: ['*'], hanldes: [] }] }, /unknown key 'hanldes'/],
    ];
    for (const [policy, why] of bad) expect(() => createAcl(policy)).toThrow(why);
  });

  it('reads JSON and YAML files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rserpool-acl-'));
    try {
      writeFileSync(join(dir, 'acl.json'), JSON.stringify(POLICY));
      writeFileSync(
        join(dir, 'acl.yaml'),
        ['rules:', '  - identity: "tftp-*"', '    roles: [pe]', '    handles: [tftp]', '  - anonymous: true', '    roles: [pu]', '    handles: ["*"]', ''].join(
          '\n',
        ),
      );
      writeFileSync(join(dir, 'broken.yaml'), 'rules: [ {');
      expect(loadAcl(join(dir, 'acl.json')).allows(psk('reg-1'), 'registrar')).toBe(true);
      const y = loadAcl(join(dir, 'acl.yaml'));
      expect(y.allows(psk('tftp-9'), 'pe', te('tftp'))).toBe(true);
      expect(y.allows(undefined, 'pu', te('anything'))).toBe(true);
      expect(() => loadAcl(join(dir, 'broken.yaml'))).toThrow(/broken\.yaml/);
      expect(() => loadAcl(join(dir, 'missing.json'))).toThrow(/cannot read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('registrar with an ACL', () => {
  let lab: Lab;
  let reg: Registrar;
  beforeEach(async () => {
    lab = createLab();
    reg = await lab.registrar('r1', { acl: createAcl(POLICY) });
  });
  afterEach(async () => {
    await lab.teardown();
  });

  const as = (host: string, identity?: PeerIdentity) =>
    RawClient.connect(
      createTransports({ tcp: false, memory: { network: lab.net, name: host, ...(identity ? { identity } : {}) } }, { clock: lab.clock }),
      'memory://r1',
    );

  it('lets a PE identity register only under the handles its rule names', async () => {
    const c = await as('pe1', psk('tftp-1'));
    c.send({ type: AsapMessageType.Registration, handle: te('tftp'), element: element(1) });
    expect((await c.next(AsapMessageType.RegistrationResponse)).error).toBeUndefined();
    c.send({ type: AsapMessageType.Registration, handle: te('echo'), element: element(2) });
    const refused = await c.next(AsapMessageType.RegistrationResponse);
    expect(refused.flags).toBe(1);
    expect(refused.error?.[0]?.code).toBe(ErrorCause.RejectionDueToSecurityConsiderations);
    expect(reg.handlespace.has('echo', 2)).toBe(false);
    expect(reg.counters.refusedByAcl).toBe(1);
  });

  it('refuses registration from a peer that proved no identity, and from a PU-only identity', async () => {
    for (const c of [await as('anon'), await as('pu1', psk('someone'))]) {
      c.send({ type: AsapMessageType.Registration, handle: te('public'), element: element(3) });
      expect((await c.next(AsapMessageType.RegistrationResponse)).error?.[0]?.code).toBe(ErrorCause.RejectionDueToSecurityConsiderations);
    }
    expect(reg.handlespace.size).toBe(0);
  });

  it('answers a resolution the ACL does not allow with the security cause and no PEs', async () => {
    const p = await as('pe1', psk('tftp-1'));
    p.send({ type: AsapMessageType.Registration, handle: te('tftp'), element: element(1) });
    await p.next(AsapMessageType.RegistrationResponse);
    const anon = await as('anon');
    anon.send({ type: AsapMessageType.HandleResolution, handle: te('tftp') });
    const no = await anon.next(AsapMessageType.HandleResolutionResponse);
    expect(no.elements).toHaveLength(0);
    expect(no.error?.[0]?.code).toBe(ErrorCause.RejectionDueToSecurityConsiderations);
    const pu = await as('pu1', psk('someone'));
    pu.send({ type: AsapMessageType.HandleResolution, handle: te('tftp') });
    expect((await pu.next(AsapMessageType.HandleResolutionResponse)).elements).toHaveLength(1);
  });
});

describe('ENRP with an ACL', () => {
  let cluster: Cluster | undefined;
  afterEach(async () => {
    await cluster?.teardown();
    cluster = undefined;
  });

  it('peers only with registrar identities; a stranger cannot plant, move or delete PEs', async () => {
    const acl = createAcl(POLICY);
    cluster = createCluster({ identity: (i) => psk(`reg-${i}`), init: { authorizePeer: (id) => acl.allows(id, 'registrar') } });
    const nodes = await cluster.spawn(2);
    nodes[0]!.hs.register('svc', pe(1, nodes[0]!.id), { ownerId: nodes[0]!.id });
    await cluster.settle();
    expect(fingerprint(nodes[1]!.hs)).toEqual(fingerprint(nodes[0]!.hs));
    const before = fingerprint(nodes[0]!.hs);
    const c = cluster;
    for (const identity of [psk('tftp-1'), undefined]) {
      const t = createTransports({ tcp: false, memory: { network: c.net, name: '127.1.0.99', ...(identity ? { identity } : {}) } }, { clock: c.clock });
      const connP = t.connect(nodes[0]!.url, { ppid: PPID.ENRP });
      await c.advance(20);
      const conn = await connP;
      let closed = conn.status !== 'open';
      conn.on('close', () => (closed = true));
      const send = (m: Parameters<typeof encodeEnrpMessage>[0]): void => {
        if (conn.status === 'open') conn.send(encodeEnrpMessage(m), PPID.ENRP);
      };
      send({ type: EnrpMessageType.Presence, senderServerId: 77, receiverServerId: 0, checksum: 0 });
      send({
        type: EnrpMessageType.HandleUpdate,
        senderServerId: nodes[1]!.id,
        receiverServerId: 0,
        action: HandleUpdateAction.Delete,
        handle: te('svc'),
        element: pe(1, nodes[0]!.id),
      });
      await c.advance(50);
      expect(closed).toBe(true);
    }
    await c.advance(2_000);
    expect(fingerprint(nodes[0]!.hs)).toEqual(before);
    expect(nodes[0]!.server.status().peers.map((p) => p.id)).toEqual([nodes[1]!.id]);
  });

  it('an authenticated registrar cannot speak for another registrar id, nor for one its rule does not name', async () => {
    const acl = createAcl({
      rules: [
        { identity: 'reg-*', roles: ['registrar'] },
        { identity: 'pinned', roles: ['registrar'], serverIds: ['0x5'] },
      ],
    });
    expect(acl.allows(psk('pinned'), 'registrar', undefined, 5)).toBe(true);
    expect(acl.allows(psk('pinned'), 'registrar', undefined, 7)).toBe(false);
    expect(() => createAcl({ rules: [{ identity: 'x', roles: ['registrar'], serverIds: ['seven'] }] })).toThrow(/server id 'seven'/);
    cluster = createCluster({ identity: (i) => psk(`reg-${i}`), init: { authorizePeer: (id, sid) => acl.allows(id, 'registrar', undefined, sid) } });
    const nodes = await cluster.spawn(2);
    nodes[1]!.hs.register('svc', pe(1, nodes[1]!.id), { ownerId: nodes[1]!.id });
    await cluster.settle();
    const before = fingerprint(nodes[0]!.hs);
    expect(before).toHaveLength(1);
    const c = cluster;
    const attempts: [PeerIdentity, number][] = [
      [psk('reg-9'), nodes[1]!.id], // a registrar identity claiming a live peer's id
      [psk('pinned'), 7], // an id its rule does not name
    ];
    for (const [identity, claimed] of attempts) {
      const t = createTransports({ tcp: false, memory: { network: c.net, name: '127.1.0.98', identity } }, { clock: c.clock });
      const connP = t.connect(nodes[0]!.url, { ppid: PPID.ENRP });
      await c.advance(20);
      const conn = await connP;
      conn.send(encodeEnrpMessage({ type: EnrpMessageType.Presence, senderServerId: claimed, receiverServerId: 0, checksum: 0 }), PPID.ENRP);
      await c.advance(20);
      if (conn.status === 'open') {
        conn.send(
          encodeEnrpMessage({
            type: EnrpMessageType.HandleUpdate,
            senderServerId: claimed,
            receiverServerId: 0,
            action: HandleUpdateAction.Delete,
            handle: te('svc'),
            element: pe(1, nodes[1]!.id),
          }),
          PPID.ENRP,
        );
      }
      await c.advance(50);
      expect(conn.status).toBe('closed');
    }
    await c.advance(2_000);
    expect(fingerprint(nodes[0]!.hs)).toEqual(before);
    // The real peer's link was kept, not replaced.
    expect(nodes[0]!.server.status().peers.map((p) => [p.id, p.state])).toEqual([[nodes[1]!.id, 'up']]);
  });
});
