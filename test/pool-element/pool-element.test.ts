import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCause, PolicyType } from '../../protocols/parameters/types.js';
import { AsapFlags, AsapMessageType } from '../../protocols/asap/types.js';
import { createPoolElement, NoRegistrarError, RegistrationRefusedError, type PoolElementInit } from '../../lib/pool-element/index.js';
import type { Registrar } from '../../lib/registrar/index.js';
import { collect, waitFor } from '../transport/util.js';
import { createLab, element, RawClient, te, type Lab } from '../registrar/helpers.js';

let lab: Lab;
let r1: Registrar;
beforeEach(async () => {
  lab = createLab();
  r1 = await lab.registrar('r1');
});
afterEach(async () => {
  await lab.teardown();
});

function pe(host: string, init: Partial<PoolElementInit> = {}) {
  return createPoolElement(
    { handle: 'svc', policy: { type: PolicyType.RoundRobin }, userTransport: element(1).userTransport, registrars: ['memory://r1'], ...init },
    { clock: lab.clock, transports: lab.host(host) },
  );
}

describe('pool element', () => {
  it('start() resolves once registered, with the registrar as home', async () => {
    const p = pe('pe1', { identifier: 42 });
    const registered = waitFor(p, 'registered');
    await p.start();
    expect(await registered).toEqual(['memory://r1', true]);
    expect(p.registered).toBe(true);
    expect(r1.handlespace.get('svc', 42)?.homeRegistrarId).toBe(r1.id);
    await p.stop();
  });

  it('re-registers before its life ends, on its own', async () => {
    const p = pe('pe1', { identifier: 43, registrationLifeMs: 2_000 });
    await p.start();
    const rereg = collect(r1, 'registered', 4);
    await lab.advance(10_000);
    const events = await rereg;
    expect(events.every(([, created]) => created === false)).toBe(true);
    expect(r1.handlespace.has('svc', 43)).toBe(true);
    await p.stop();
  });

  it('graceful stop deregisters at once', async () => {
    const p = pe('pe1', { identifier: 44 });
    await p.start();
    const dereg = waitFor(r1, 'deregistered');
    const done = waitFor(p, 'deregistered');
    await p.stop();
    expect((await dereg)[0].identifier).toBe(44);
    expect(await done).toEqual([true]);
    expect(r1.handlespace.size).toBe(0);
  });

  it('updatePolicy() re-registers at once with the new values', async () => {
    const p = pe('pe1', { identifier: 45, handle: 'lu', policy: { type: PolicyType.LeastUsed, load: 1 } });
    await p.start();
    await p.updatePolicy({ load: 0x8000_0000 });
    expect(r1.handlespace.get('lu', 45)?.policy).toEqual({ type: PolicyType.LeastUsed, load: 0x8000_0000 });
    await p.stop();
  });

  it('start() rejects with RegistrationRefusedError carrying the RFC cause', async () => {
    const a = pe('pe1', { identifier: 1 });
    await a.start();
    const b = pe('pe2', { identifier: 2, policy: { type: PolicyType.Random } });
    const err = await b.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistrationRefusedError);
    expect((err as RegistrationRefusedError).errorCause).toBe(ErrorCause.InconsistentPoolingPolicy);
    await a.stop();
  });

  it('start() keeps trying while its identifier is held by another live association, and registers once it is free', async () => {
    const a = pe('pe1', { identifier: 9 });
    await a.start();
    // Another transport under the same identifier: refused as Non-unique PE Identifier, for now.
    const b = pe('pe2', { identifier: 9, userTransport: { ...element(1).userTransport, port: 7999 } });
    let failed: unknown;
    const started = b.start().catch((e: unknown) => (failed = e));
    await lab.advance(600);
    expect(failed).toBeUndefined();
    await a.stop();
    await lab.advance(2_000);
    await started;
    expect(failed).toBeUndefined();
    expect(r1.handlespace.get('svc', 9)?.userTransport.port).toBe(7999);
    await b.stop();
  });

  it('start() rejects with NoRegistrarError when no registrar answers in time', async () => {
    const p = pe('pe1', { registrars: ['memory://nobody'], startTimeoutMs: 3_000, discovery: false });
    const started = p.start().catch((e: unknown) => e);
    await lab.advance(3_100);
    expect(await started).toBeInstanceOf(NoRegistrarError);
  });

  it('hunts a new registrar when its registrar dies', async () => {
    const r2 = await lab.registrar('r2');
    const p = pe('pe1', { identifier: 46, registrars: ['memory://r1', 'memory://r2'], registrationLifeMs: 4_000, registrationTimeoutMs: 1_000 });
    await p.start();
    expect(p.registrar).toBe('memory://r1');
    const changed = waitFor(p, 'registrar-changed');
    lab.net.kill('r1');
    // re-registration at 2 s goes unanswered for 1 s, then the PE moves on
    await lab.advance(3_500);
    expect(await changed).toEqual(['memory://r2', 'memory://r1']);
    expect(r2.handlespace.get('svc', 46)?.homeRegistrarId).toBe(r2.id);
    await p.stop();
  });

  it('re-registers elsewhere before its life ends when its home stops answering (frozen or cut off), not after the full registration timeout', async () => {
    const r2 = await lab.registrar('r2');
    const p = pe('pe1', { identifier: 49, registrars: ['memory://r1', 'memory://r2'], registrationLifeMs: 10_000 });
    await p.start();
    expect(p.registrar).toBe('memory://r1');
    // Silence, not a reset: what a paused registrar looks like from the PE.
    lab.net.partition(['pe1'], ['r1']);
    // The re-registration at 5 s must not wait the 5 s registration timeout: the entry ends at 10 s.
    await lab.advance(9_000);
    expect(p.registrar).toBe('memory://r2');
    expect(r2.handlespace.get('svc', 49)?.homeRegistrarId).toBe(r2.id);
    lab.net.heal();
    await p.stop();
  });

  it('passes over a frozen registrar (it takes the connection, never answers) within a second, not the 5 s registration timeout', async () => {
    // A registrar stopped by SIGSTOP: the kernel still accepts connections; nothing answers.
    const frozen = await lab.host('frozen').listen('memory://frozen');
    const held: unknown[] = [];
    frozen.on('connection', (c) => held.push(c));
    const p = pe('pe1', { identifier: 48, registrars: ['memory://frozen', 'memory://r1'] });
    const started = p.start();
    await lab.advance(1_500);
    await started;
    expect(held).toHaveLength(1);
    expect(p.registrar).toBe('memory://r1');
    expect(r1.handlespace.has('svc', 48)).toBe(true);
    await p.stop();
    await frozen.close();
  });

  it('registers again at once with a home that dropped it (it was paused past the keep-alive timeout), before a frozen registrar', async () => {
    const r2 = await lab.registrar('r2', { keepAliveIntervalMs: 1_000, keepAliveTimeoutMs: 1_000 });
    const frozen = await lab.host('frozen').listen('memory://frozen');
    const held: unknown[] = [];
    frozen.on('connection', (c) => held.push(c));
    const p = pe('pe1', { identifier: 50, registrars: ['memory://r2', 'memory://frozen'] });
    await p.start();
    expect(p.registrar).toBe('memory://r2');
    // The PE "paused": its home's keep-alive goes unanswered; it resumes just before the timeout, to the home's reset.
    lab.net.partition(['pe1'], ['r2']);
    await lab.advance(1_500);
    lab.net.heal();
    let removedAt: number | undefined;
    let backAt: number | undefined;
    r2.on('removed', (_e, reason) => (removedAt ??= reason === 'keep-alive-timeout' ? lab.clock.now() : undefined));
    r2.on('registered', (_e, created) => (backAt ??= created && removedAt !== undefined ? lab.clock.now() : undefined));
    await lab.advance(1_600);
    // Alive and answering, the home is the one to try first: not the frozen one, which costs a second.
    expect(removedAt).toBeDefined();
    expect(backAt! - removedAt!).toBeLessThanOrEqual(100);
    expect(r2.handlespace.get('svc', 50)?.homeRegistrarId).toBe(r2.id);
    expect(p.registrar).toBe('memory://r2');
    expect(held).toHaveLength(0);
    await p.stop();
    await frozen.close();
  });

  it('hunts at once when the registrar that took it over (H bit) is gone before the PE could register there, its old home last', async () => {
    const r2 = await lab.registrar('r2');
    const p = createPoolElement(
      {
        handle: 'svc',
        policy: { type: PolicyType.RoundRobin },
        userTransport: element(1).userTransport,
        registrars: ['memory://r1', 'memory://r2'],
        asapListen: 'memory://127.0.0.9',
        identifier: 51,
      },
      { clock: lab.clock, transports: lab.host('127.0.0.9') },
    );
    await p.start();
    expect(p.registrar).toBe('memory://r1');
    // Its home froze; a peer took it over and reaches the PE with the H bit, then is gone itself
    // (it timed the PE out, or died) before the PE registered there: the PE is listed nowhere.
    lab.net.partition(['127.0.0.9'], ['r1']);
    const taker = await RawClient.connect(lab.host('127.0.0.2'), 'memory://127.0.0.9');
    taker.send({ type: AsapMessageType.EndpointKeepAlive, flags: AsapFlags.Home, serverId: 0x2222, handle: te('svc'), identifier: 51 });
    await taker.next(AsapMessageType.Registration);
    taker.conn.abort();
    const registered = waitFor(r2, 'registered');
    await lab.advance(500);
    // Not left waiting for its next re-registration (life / 2) at a home that was declared dead.
    expect((await registered)[0].identifier).toBe(51);
    expect(p.registrar).toBe('memory://r2');
    lab.net.heal();
    await p.stop();
  });

  it('hunts at once when its registrar connection closes, with backoff while none is there', async () => {
    const p = pe('pe1', { identifier: 47 });
    await p.start();
    await r1.stop();
    const errors: Error[] = [];
    p.on('error', (e) => errors.push(e));
    await lab.advance(2_000);
    expect(p.registered).toBe(false);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.length).toBeLessThan(20);
    const r1b = await lab.registrar('r1');
    const back = waitFor(p, 'registered');
    await lab.advance(12_000, 250);
    await back;
    expect(r1b.handlespace.has('svc', 47)).toBe(true);
    await p.stop();
  });
});
