import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AsapFlags, AsapMessageType } from '../../protocols/asap/types.js';
import { ErrorCause, PolicyType } from '../../protocols/parameters/types.js';
import { createPoolElement } from '../../lib/pool-element/index.js';
import { createPoolUser, UnknownPoolHandleError } from '../../lib/pool-user/index.js';
import type { Registrar } from '../../lib/registrar/index.js';
import { waitFor } from '../transport/util.js';
import { createTransports } from '../../lib/transport/index.js';
import { createLab, element, RawClient, te, type Lab } from './helpers.js';

let lab: Lab;
let reg: Registrar;
beforeEach(async () => {
  lab = createLab();
  reg = await lab.registrar('r1');
});
afterEach(async () => {
  await lab.teardown();
});

async function register(c: RawClient, handle: string, pe = element(1)) {
  c.send({ type: AsapMessageType.Registration, handle: te(handle), element: pe });
  return c.next(AsapMessageType.RegistrationResponse, (m) => m.identifier === pe.identifier);
}

describe('registrar - ASAP registration, resolution, deregistration', () => {
  it('registers a PE, resolves it with our id as home, and deregisters it', async () => {
    const c = await RawClient.connect(lab.host('pe1'), 'memory://r1');
    const res = await register(c, 'echo', element(7, { port: 9000 }));
    expect(res.flags ?? 0).toBe(0);
    expect(res.error).toBeUndefined();

    c.send({ type: AsapMessageType.HandleResolution, handle: te('echo') });
    const hr = await c.next(AsapMessageType.HandleResolutionResponse);
    expect(hr.elements).toHaveLength(1);
    expect(hr.elements[0]).toMatchObject({ identifier: 7, homeRegistrarId: reg.id, userTransport: { port: 9000 } });

    c.send({ type: AsapMessageType.Deregistration, handle: te('echo'), identifier: 7 });
    const dr = await c.next(AsapMessageType.DeregistrationResponse);
    expect(dr.error).toBeUndefined();
    expect(reg.handlespace.size).toBe(0);

    c.send({ type: AsapMessageType.HandleResolution, handle: te('echo') });
    const none = await c.next(AsapMessageType.HandleResolutionResponse);
    expect(none.elements).toHaveLength(0);
    expect(none.error?.[0]?.code).toBe(ErrorCause.UnknownPoolHandle);
  });

  it('honours the handle resolution items option up to the maximum', async () => {
    const c = await RawClient.connect(lab.host('pe1'), 'memory://r1');
    for (let i = 1; i <= 6; i++) await register(c, 'many', element(i));
    c.send({ type: AsapMessageType.HandleResolution, handle: te('many') });
    expect((await c.next(AsapMessageType.HandleResolutionResponse)).elements).toHaveLength(3);
    c.send({ type: AsapMessageType.HandleResolution, handle: te('many'), items: 5 });
    expect((await c.next(AsapMessageType.HandleResolutionResponse)).elements).toHaveLength(5);
  });

  it('re-registration from the same connection updates policy values and transport', async () => {
    const c = await RawClient.connect(lab.host('pe1'), 'memory://r1');
    await register(c, 'lu', element(3, { policy: { type: PolicyType.LeastUsed, load: 10 } }));
    const again = await register(c, 'lu', element(3, { policy: { type: PolicyType.LeastUsed, load: 99 }, port: 9100 }));
    expect(again.error).toBeUndefined();
    const e = reg.handlespace.get('lu', 3)!;
    expect(e.policy).toEqual({ type: PolicyType.LeastUsed, load: 99 });
    expect(e.userTransport.port).toBe(9100);
    expect(reg.handlespace.size).toBe(1);
  });

  it('refuses a PE whose policy differs from the pool with Inconsistent Pooling Policy and the R bit', async () => {
    const c = await RawClient.connect(lab.host('pe1'), 'memory://r1');
    await register(c, 'pool', element(1));
    const res = await register(c, 'pool', element(2, { policy: { type: PolicyType.WeightedRandom, weight: 5 } }));
    expect((res.flags ?? 0) & AsapFlags.Reject).toBe(AsapFlags.Reject);
    expect(res.error?.[0]?.code).toBe(ErrorCause.InconsistentPoolingPolicy);
    expect(reg.handlespace.has('pool', 2)).toBe(false);
  });

  it('refuses invalid registrations with Invalid Values: empty handle, port 0, PE identifier 0, too long a handle', async () => {
    const r = await lab.registrar('r2', { maxHandleLength: 16 });
    const c = await RawClient.connect(lab.host('pe1'), 'memory://r2');
    const cases: [string, ReturnType<typeof element>][] = [
      ['', element(1)],
      ['x', element(3, { port: 0 })],
      ['x'.repeat(17), element(4)],
      ['x', element(0)],
    ];
    for (const [h, pe] of cases) {
      const res = await register(c, h, pe);
      expect(res.error?.[0]?.code).toBe(ErrorCause.InvalidValues);
    }
    expect(r.handlespace.size).toBe(0);
  });

  it('for its startup grace, answers an unknown handle with Lack of Resources (not final), then with Unknown Pool Handle; a known one at once', async () => {
    await lab.registrar('r3', { startupGraceMs: 5_000 });
    const c = await RawClient.connect(lab.host('pu1'), 'memory://r3');
    const resolve = async (handle: string) => {
      c.send({ type: AsapMessageType.HandleResolution, handle: te(handle) });
      return c.next(AsapMessageType.HandleResolutionResponse);
    };
    expect((await resolve('gone')).error?.[0]?.code).toBe(ErrorCause.LackOfResources);
    await register(c, 'back', element(3));
    expect((await resolve('back')).elements.map((e) => e.identifier)).toEqual([3]);
    await lab.advance(5_000);
    expect((await resolve('gone')).error?.[0]?.code).toBe(ErrorCause.UnknownPoolHandle);
  });

  it('while ENRP hears none of its peers, answers a handle with no PE with Lack of Resources (try another registrar), a known one as usual', async () => {
    const r = await lab.registrar('r3');
    let isolated = true;
    r.setIsolationCheck(() => isolated);
    const c = await RawClient.connect(lab.host('pu1'), 'memory://r3');
    const resolve = async (handle: string) => {
      c.send({ type: AsapMessageType.HandleResolution, handle: te(handle) });
      return c.next(AsapMessageType.HandleResolutionResponse);
    };
    expect((await resolve('moved')).error?.[0]?.code).toBe(ErrorCause.LackOfResources);
    await register(c, 'here', element(4));
    expect((await resolve('here')).elements.map((e) => e.identifier)).toEqual([4]);
    isolated = false;
    expect((await resolve('moved')).error?.[0]?.code).toBe(ErrorCause.UnknownPoolHandle);
  });

  it('refuses a registration life above its limit (clamped, the PE would drop out of every cycle without knowing), and takes one at the limit', async () => {
    const r = await lab.registrar('r2', { maxRegistrationLifeMs: 10_000 });
    const c = await RawClient.connect(lab.host('pe1'), 'memory://r2');
    for (const life of [10_001, 0xffffffff]) {
      const res = await register(c, 'x', element(1, { life }));
      expect(res.error?.[0]?.code).toBe(ErrorCause.InvalidValues);
      expect(new TextDecoder().decode(res.error![0]!.info)).toMatch(/above this registrar's limit of 10000 ms/);
      expect(r.handlespace.has('x', 1)).toBe(false);
    }
    const ok = await register(c, 'x', element(1, { life: 10_000 }));
    expect(ok.error).toBeUndefined();
    expect(r.handlespace.get('x', 1)!.registrationLife).toBe(10_000);
  });

  it('refuses a registration of a PE registered through another live connection with Non-unique PE Identifier', async () => {
    const a = await RawClient.connect(lab.host('pe1'), 'memory://r1');
    const b = await RawClient.connect(lab.host('intruder'), 'memory://r1');
    await register(a, 'svc', element(5, { port: 1111 }));
    const res = await register(b, 'svc', element(5, { port: 6666 }));
    expect(res.error?.[0]?.code).toBe(ErrorCause.NonUniquePeIdentifier);
    expect(reg.handlespace.get('svc', 5)!.userTransport.port).toBe(1111);
  });

  it('admits a PE restarted with the same identifier and transport while its old connection is still open (the old one is stale and closed)', async () => {
    const old = await RawClient.connect(lab.host('pe1'), 'memory://r1');
    await register(old, 'svc', element(6, { port: 1111 }));
    const closed = new Promise<void>((r) => old.conn.once('close', () => r()));
    const fresh = await RawClient.connect(lab.host('pe1'), 'memory://r1');
    const res = await register(fresh, 'svc', element(6, { port: 1111 }));
    expect(res.error).toBeUndefined();
    await closed;
    expect(reg.handlespace.get('svc', 6)!.userTransport.port).toBe(1111);
    // The registration is bound to the new connection: it deregisters it.
    fresh.send({ type: AsapMessageType.Deregistration, handle: te('svc'), identifier: 6 });
    expect((await fresh.next(AsapMessageType.DeregistrationResponse)).error).toBeUndefined();
    expect(reg.handlespace.has('svc', 6)).toBe(false);
  });

  it('a third party cannot deregister someone else’s PE; deregistering an unknown PE succeeds', async () => {
    const a = await RawClient.connect(lab.host('pe1'), 'memory://r1');
    const b = await RawClient.connect(lab.host('intruder'), 'memory://r1');
    await register(a, 'svc', element(5));
    b.send({ type: AsapMessageType.Deregistration, handle: te('svc'), identifier: 5 });
    const refused = await b.next(AsapMessageType.DeregistrationResponse);
    expect(refused.error?.[0]?.code).toBe(ErrorCause.RejectionDueToSecurityConsiderations);
    expect(reg.handlespace.has('svc', 5)).toBe(true);
    b.send({ type: AsapMessageType.Deregistration, handle: te('svc'), identifier: 999 });
    expect((await b.next(AsapMessageType.DeregistrationResponse)).error).toBeUndefined();
  });

  it('answers handle resolution with Lack of Resources while not synchronised', async () => {
    const c = await RawClient.connect(lab.host('pu'), 'memory://r1');
    await register(c, 'svc', element(1));
    reg.setSynchronised(false);
    c.send({ type: AsapMessageType.HandleResolution, handle: te('svc') });
    expect((await c.next(AsapMessageType.HandleResolutionResponse)).error?.[0]?.code).toBe(ErrorCause.LackOfResources);
    reg.setSynchronised(true);
    c.send({ type: AsapMessageType.HandleResolution, handle: te('svc') });
    expect((await c.next(AsapMessageType.HandleResolutionResponse)).elements).toHaveLength(1);
  });

  it('status() lists pools, PEs with owner, policy and connection', async () => {
    const c = await RawClient.connect(lab.host('pe1'), 'memory://r1');
    await register(c, 'svc', element(9, { policy: { type: PolicyType.WeightedRandom, weight: 3 } }));
    const s = reg.status();
    expect(s).toMatchObject({ id: reg.id, connections: 1, poolElements: 1, owned: 1, synchronised: true });
    expect(s.pools[0]).toMatchObject({ handle: 'svc', policyType: PolicyType.WeightedRandom });
    expect(s.pools[0]!.elements[0]).toMatchObject({ identifier: 9, homeRegistrarId: reg.id, policy: { weight: 3 } });
    expect(s.pools[0]!.elements[0]!.connection).not.toBeNull();
  });
});

describe('registrar - keep-alive, expiry, unreachable', () => {
  it('removes a PE that stops answering keep-alives after interval + timeout, and not before', async () => {
    const pe = createPoolElement(
      { handle: 'ka', policy: { type: PolicyType.RoundRobin }, userTransport: element(1).userTransport, registrars: ['memory://r1'], identifier: 11 },
      { clock: lab.clock, transports: lab.host('pe1') },
    );
    await pe.start();
    expect(reg.handlespace.has('ka', 11)).toBe(true);
    const removed = waitFor(reg, 'removed');
    lab.net.kill('pe1');
    await lab.advance(9_900);
    expect(reg.handlespace.has('ka', 11)).toBe(true);
    await lab.advance(100);
    const [entry, reason] = await removed;
    expect(reason).toBe('keep-alive-timeout');
    expect(entry.identifier).toBe(11);
    expect(reg.handlespace.has('ka', 11)).toBe(false);
    await pe.stop();
  });

  it('closes the connection of a PE it timed out, so a paused PE learns of it when it resumes', async () => {
    const c = await RawClient.connect(lab.host('pe1'), 'memory://r1');
    await register(c, 'ka', element(21));
    const closed = new Promise<void>((r) => c.conn.on('close', () => r()));
    let isClosed = false;
    void closed.then(() => (isClosed = true));
    const removed = waitFor(reg, 'removed');
    await lab.advance(10_000);
    const [entry, reason] = await removed;
    expect([entry.identifier, reason]).toEqual([21, 'keep-alive-timeout']);
    await closed;
    expect(isClosed).toBe(true);
  });

  it('keeps the connection open while it still carries another live PE', async () => {
    const c = await RawClient.connect(lab.host('pe1'), 'memory://r1');
    await register(c, 'ka', element(22));
    await register(c, 'ka', element(23));
    let closed = false;
    c.conn.on('close', () => (closed = true));
    // answer keep-alives for 23 only
    c.conn.on('message', () => {
      for (const m of c.received.splice(0)) {
        if (m.type === AsapMessageType.EndpointKeepAlive && m.identifier === 23)
          c.send({ type: AsapMessageType.EndpointKeepAliveAck, handle: te('ka'), identifier: 23 });
      }
    });
    const removed = waitFor(reg, 'removed');
    await lab.advance(10_000, 250);
    expect((await removed)[0].identifier).toBe(22);
    expect(reg.handlespace.has('ka', 23)).toBe(true);
    expect(closed).toBe(false);
  });

  it('keeps a PE that answers its keep-alives', async () => {
    const pe = createPoolElement(
      { handle: 'ka', policy: { type: PolicyType.RoundRobin }, userTransport: element(1).userTransport, registrars: ['memory://r1'], identifier: 12 },
      { clock: lab.clock, transports: lab.host('pe1') },
    );
    await pe.start();
    let removed = 0;
    reg.on('removed', () => removed++);
    await lab.advance(60_000, 250);
    expect(removed).toBe(0);
    expect(reg.handlespace.has('ka', 12)).toBe(true);
    expect(pe.registrarId).toBe(reg.id);
    await pe.stop();
  });

  it('expires a PE whose registration life runs out without re-registration', async () => {
    const c = await RawClient.connect(lab.host('pe1'), 'memory://r1');
    await register(c, 'short', element(1, { life: 2_000 }));
    const removed = waitFor(reg, 'removed');
    await lab.advance(1_900);
    expect(reg.handlespace.has('short', 1)).toBe(true);
    await lab.advance(200);
    expect(await removed).toMatchObject([{ identifier: 1 }, 'expired']);
  });

  it('probes a PE reported unreachable by the threshold of distinct PUs, and removes it when the probe is not answered', async () => {
    const c = await RawClient.connect(lab.host('pe1'), 'memory://r1');
    await register(c, 'svc', element(4));
    const pus = await Promise.all(['pu1', 'pu2', 'pu3'].map((h) => RawClient.connect(lab.host(h), 'memory://r1')));
    const report = async (pu: RawClient) => {
      pu.send({ type: AsapMessageType.EndpointUnreachable, handle: te('svc'), identifier: 4 });
      await lab.settle();
    };
    await report(pus[0]!);
    await report(pus[0]!);
    await report(pus[1]!);
    expect(reg.counters.unreachableProbes).toBe(0);
    await report(pus[2]!);
    // The probe goes out at once, long before the scheduled keep-alive (5 s).
    await c.next(AsapMessageType.EndpointKeepAlive, (m) => m.identifier === 4, 500);
    expect(reg.counters.unreachableProbes).toBe(1);
    expect(reg.handlespace.has('svc', 4)).toBe(true);
    const removed = waitFor(reg, 'removed');
    await lab.advance(5_000);
    expect((await removed)[1]).toBe('unreachable');
    expect(reg.handlespace.has('svc', 4)).toBe(false);
  });

  it('keeps a live PE that thirty PUs report unreachable: it answers the probe', async () => {
    const pe = createPoolElement(
      { handle: 'svc', policy: { type: PolicyType.RoundRobin }, userTransport: element(1).userTransport, registrars: ['memory://r1'], identifier: 5 },
      { clock: lab.clock, transports: lab.host('pe1') },
    );
    await pe.start();
    let removed = 0;
    reg.on('removed', () => removed++);
    const pus = await Promise.all(Array.from({ length: 30 }, (_, i) => RawClient.connect(lab.host(`pu${i}`), 'memory://r1')));
    for (let round = 0; round < 3; round++) {
      for (const pu of pus) pu.send({ type: AsapMessageType.EndpointUnreachable, handle: te('svc'), identifier: 5 });
      await lab.advance(6_000, 250);
    }
    expect(reg.counters.unreachableProbes).toBeGreaterThanOrEqual(3);
    expect(removed).toBe(0);
    expect(reg.handlespace.has('svc', 5)).toBe(true);
    await pe.stop();
  });

  it('counts many connections from one host as one reporter, and rate-limits a reporter', async () => {
    const r = await lab.registrar('r3', { unreachableBurst: 5, unreachableReportsPerSecond: 1 });
    const c = await RawClient.connect(lab.host('pe1'), 'memory://r3');
    await register(c, 'svc', element(6));
    const conns = await Promise.all(Array.from({ length: 10 }, () => RawClient.connect(lab.host('mallory'), 'memory://r3')));
    for (const m of conns) m.send({ type: AsapMessageType.EndpointUnreachable, handle: te('svc'), identifier: 6 });
    await lab.settle();
    expect(r.counters.unreachableReports).toBe(10);
    expect(r.counters.unreachableReportsIgnored).toBe(5);
    expect(r.counters.unreachableProbes).toBe(0);
    // A second after, one more report is allowed again.
    await lab.advance(1_000);
    conns[0]!.send({ type: AsapMessageType.EndpointUnreachable, handle: te('svc'), identifier: 6 });
    await lab.settle();
    expect(r.counters.unreachableReportsIgnored).toBe(5);
    expect(r.handlespace.has('svc', 6)).toBe(true);
  });

  it('counts one authenticated identity once, from however many hosts', async () => {
    const c = await RawClient.connect(lab.host('pe1'), 'memory://r1');
    await register(c, 'svc', element(8));
    const identity = { kind: 'psk', name: 'pu-shared' } as const;
    const hosts = ['h1', 'h2', 'h3', 'h4'].map((h) => createTransports({ tcp: false, memory: { network: lab.net, name: h, identity } }, { clock: lab.clock }));
    for (const t of hosts) (await RawClient.connect(t, 'memory://r1')).send({ type: AsapMessageType.EndpointUnreachable, handle: te('svc'), identifier: 8 });
    await lab.settle();
    expect(reg.counters.unreachableReports).toBe(4);
    expect(reg.counters.unreachableProbes).toBe(0);
  });

  it('does not let a keep-alive ack from another connection keep a silent PE listed', async () => {
    const c = await RawClient.connect(lab.host('pe1'), 'memory://r1');
    await register(c, 'ka', element(31));
    const forger = await RawClient.connect(lab.host('mallory'), 'memory://r1');
    const removed = waitFor(reg, 'removed');
    for (let t = 0; t < 10_000; t += 500) {
      forger.send({ type: AsapMessageType.EndpointKeepAliveAck, handle: te('ka'), identifier: 31 });
      await lab.advance(500);
    }
    expect(await removed).toMatchObject([{ identifier: 31 }, 'keep-alive-timeout']);
    expect(reg.handlespace.has('ka', 31)).toBe(false);
  });

  it('does not count reports older than the window', async () => {
    const r = await lab.registrar('r2', { unreachableThreshold: 2, unreachableWindowMs: 1_000 });
    const c = await RawClient.connect(lab.host('pe1'), 'memory://r2');
    await register(c, 'svc', element(4));
    const a = await RawClient.connect(lab.host('pu1'), 'memory://r2');
    const b = await RawClient.connect(lab.host('pu2'), 'memory://r2');
    a.send({ type: AsapMessageType.EndpointUnreachable, handle: te('svc'), identifier: 4 });
    await lab.settle();
    await lab.advance(1_500);
    b.send({ type: AsapMessageType.EndpointUnreachable, handle: te('svc'), identifier: 4 });
    await lab.settle();
    expect(r.handlespace.has('svc', 4)).toBe(true);
  });
});

describe('registrar - bad input', () => {
  it('answers an unknown message type with ASAP_ERROR (Unrecognized Message, the message itself) and keeps serving the connection', async () => {
    const c = await RawClient.connect(lab.host('pe1'), 'memory://r1');
    const garbage = Uint8Array.from([0x7f, 0x00, 0x00, 0x08, 0xde, 0xad, 0xbe, 0xef]);
    const bad = waitFor(reg, 'bad-message');
    c.sendBytes(garbage);
    const err = await c.next(AsapMessageType.Error);
    expect(err.error[0]?.code).toBe(ErrorCause.UnrecognizedMessage);
    expect([...err.error[0]!.info]).toEqual([...garbage]);
    await bad;
    const res = await register(c, 'svc', element(1));
    expect(res.error).toBeUndefined();
  });

  it('answers a malformed registration with ASAP_ERROR (Invalid Values)', async () => {
    const c = await RawClient.connect(lab.host('pe1'), 'memory://r1');
    c.sendBytes(Uint8Array.from([0x01, 0x00, 0x00, 0x0c, 0x00, 0x09, 0x00, 0x40, 0x61, 0x62, 0x63, 0x64]));
    expect((await c.next(AsapMessageType.Error)).error[0]?.code).toBe(ErrorCause.InvalidValues);
  });

  it('bounds a registration flood from one connection with Lack of Resources and loses no other registration', async () => {
    const r = await lab.registrar('r2', { maxPoolElementsPerConnection: 10 });
    const good = await RawClient.connect(lab.host('good'), 'memory://r2');
    await register(good, 'svc', element(1));
    const flood = await RawClient.connect(lab.host('flood'), 'memory://r2');
    for (let i = 0; i < 50; i++) flood.send({ type: AsapMessageType.Registration, handle: te('svc'), element: element(100 + i) });
    const answers = [];
    for (let i = 0; i < 50; i++) answers.push(await flood.next(AsapMessageType.RegistrationResponse));
    expect(answers.filter((a) => !a.error)).toHaveLength(10);
    expect(answers.filter((a) => a.error?.[0]?.code === ErrorCause.LackOfResources)).toHaveLength(40);
    expect(r.handlespace.has('svc', 1)).toBe(true);
    expect(r.handlespace.size).toBe(11);
    // re-registering one it holds is still fine
    expect((await register(flood, 'svc', element(100))).error).toBeUndefined();
  });
});

describe('registrar - ENRP hooks', () => {
  it('applies a foreign PE with its owner, resolves it, and does not supervise it', async () => {
    expect(reg.applyForeign('svc', element(77), 0xabc)).toBe(true);
    const pu = createPoolUser({ registrars: ['memory://r1'] }, { clock: lab.clock, transports: lab.host('pu') });
    const pes = await pu.resolve('svc');
    expect(pes[0]).toMatchObject({ identifier: 77, homeRegistrarId: 0xabc });
    await lab.advance(20_000, 1_000);
    expect(reg.handlespace.get('svc', 77)?.homeRegistrarId).toBe(0xabc);
    await pu.close();
  });
});

describe('registrar - lifecycle', () => {
  it('gives itself a random non-zero id when none is given, and stops cleanly', async () => {
    const { createRegistrar } = await import('../../lib/registrar/index.js');
    const r = createRegistrar({ asap: ['memory://r9'], announce: false }, { clock: lab.clock, transports: lab.host('r9'), random: () => 0.5 });
    expect(r.id).toBe(0x80000000);
    await r.start();
    expect(r.addresses.map((a) => a.href)).toEqual(['memory://r9']);
    await r.stop();
    await expect(r.start()).rejects.toMatchObject({ code: 'RSP_ERR_STATE' });
  });

  it('the pool user sees no pool after the registrar lost its PEs', async () => {
    const pu = createPoolUser({ registrars: ['memory://r1'] }, { clock: lab.clock, transports: lab.host('pu') });
    await expect(pu.resolve('nothing')).rejects.toBeInstanceOf(UnknownPoolHandleError);
    await pu.close();
  });
});
