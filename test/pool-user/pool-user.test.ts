import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PolicyType } from '../../protocols/parameters/types.js';
import { createPoolElement } from '../../lib/pool-element/index.js';
import { createPoolUser, UnknownPoolHandleError } from '../../lib/pool-user/index.js';
import type { Registrar } from '../../lib/registrar/index.js';
import { waitFor } from '../transport/util.js';
import { createLab, element, type Lab } from '../registrar/helpers.js';

let lab: Lab;
let r1: Registrar;
beforeEach(async () => {
  lab = createLab();
  r1 = await lab.registrar('r1', { unreachableThreshold: 1 });
});
afterEach(async () => {
  await lab.teardown();
});

async function startPe(host: string, identifier: number, registrars = ['memory://r1']) {
  const p = createPoolElement(
    { handle: 'svc', policy: { type: PolicyType.RoundRobin }, userTransport: element(identifier).userTransport, registrars, identifier },
    { clock: lab.clock, transports: lab.host(host) },
  );
  await p.start();
  return p;
}

describe('pool user', () => {
  it('connects again on its next try when no registrar could be reached (a lost SYN), instead of failing the resolution', async () => {
    r1.applyForeign('svc', { ...element(1), homeRegistrarId: 5 }, 5);
    const pu = createPoolUser({ registrars: ['memory://r1'], cacheTtlMs: 0, connectTimeoutMs: 1_000 }, { clock: lab.clock, transports: lab.host('pu') });
    lab.net.partition(['pu'], ['r1']);
    let got: unknown;
    let err: unknown;
    const p = pu.resolve('svc').then(
      (r) => (got = r),
      (e: unknown) => (err = e),
    );
    await lab.advance(1_100, 50);
    lab.net.heal();
    await lab.advance(1_100, 50);
    await p;
    expect(err).toBeUndefined();
    expect(got).toHaveLength(1);
    await pu.close();
  });

  it('passes over a frozen registrar after 250 ms (before round trips are measured), not after requestTimeoutMs', async () => {
    const r2 = await lab.registrar('r2');
    r2.applyForeign('svc', { ...element(1), homeRegistrarId: 5 }, 5);
    r1.applyForeign('svc', { ...element(1), homeRegistrarId: 5 }, 5);
    const pu = createPoolUser(
      { registrars: ['memory://r1', 'memory://r2'], cacheTtlMs: 0, requestTimeoutMs: 3_000 },
      { clock: lab.clock, transports: lab.host('pu') },
    );
    expect(await pu.resolve('svc')).toHaveLength(1);
    lab.net.kill('r1');
    let got: unknown;
    const p = pu.resolve('svc').then((r) => (got = r));
    await lab.advance(240, 10);
    expect(got).toBeUndefined();
    await lab.advance(100, 10);
    expect(got).toHaveLength(1);
    expect(pu.registrar).toBe('memory://r2');
    await p;
    await pu.close();
  });

  it('resolves a pool into its PEs', async () => {
    const a = await startPe('pe1', 1);
    const b = await startPe('pe2', 2);
    const pu = createPoolUser({ registrars: ['memory://r1'] }, { clock: lab.clock, transports: lab.host('pu') });
    const pes = await pu.resolve('svc');
    expect(pes.map((p) => p.identifier).sort()).toEqual([1, 2]);
    await Promise.all([a.stop(), b.stop(), pu.close()]);
  });

  it('serves from its cache within cacheTtlMs and asks again after it', async () => {
    const a = await startPe('pe1', 1);
    const pu = createPoolUser({ registrars: ['memory://r1'], cacheTtlMs: 250 }, { clock: lab.clock, transports: lab.host('pu') });
    expect(await pu.resolve('svc')).toHaveLength(1);
    await a.stop();
    expect(r1.handlespace.size).toBe(0);
    await lab.advance(200);
    expect(await pu.resolve('svc')).toHaveLength(1);
    await lab.advance(100);
    await expect(pu.resolve('svc')).rejects.toBeInstanceOf(UnknownPoolHandleError);
    await pu.close();
  });

  it('reportUnreachable() tells the registrar and drops the PE from the cache', async () => {
    const a = await startPe('pe1', 1);
    const b = await startPe('pe2', 2);
    const pu = createPoolUser({ registrars: ['memory://r1'], cacheTtlMs: 10_000 }, { clock: lab.clock, transports: lab.host('pu') });
    expect(await pu.resolve('svc')).toHaveLength(2);
    const removed = waitFor(r1, 'removed');
    lab.net.kill('pe1');
    await pu.reportUnreachable('svc', 1);
    expect((await pu.resolve('svc')).map((p) => p.identifier)).toEqual([2]);
    // The registrar's probe goes unanswered: the PE is removed as unreachable, well before its next keep-alive would time out.
    await lab.advance(5_500);
    expect(await removed).toMatchObject([{ identifier: 1 }, 'unreachable']);
    await Promise.all([a.stop(), b.stop(), pu.close()]);
  });

  it('fails over to the next registrar when its registrar goes away', async () => {
    const r2 = await lab.registrar('r2');
    const a = await startPe('pe1', 1);
    r2.applyForeign('svc', { ...element(1), homeRegistrarId: r1.id }, r1.id);
    const pu = createPoolUser({ registrars: ['memory://r1', 'memory://r2'], cacheTtlMs: 0 }, { clock: lab.clock, transports: lab.host('pu') });
    expect(await pu.resolve('svc')).toHaveLength(1);
    expect(pu.registrar).toBe('memory://r1');
    await r1.stop();
    expect(await pu.resolve('svc')).toHaveLength(1);
    expect(pu.registrar).toBe('memory://r2');
    await Promise.all([a.stop(), pu.close()]);
  });

  it('fails over when its registrar goes silent (request timeout)', async () => {
    const r2 = await lab.registrar('r2');
    r2.applyForeign('svc', { ...element(1), homeRegistrarId: 5 }, 5);
    r1.applyForeign('svc', { ...element(1), homeRegistrarId: 5 }, 5);
    const pu = createPoolUser(
      { registrars: ['memory://r1', 'memory://r2'], cacheTtlMs: 0, requestTimeoutMs: 1_000 },
      { clock: lab.clock, transports: lab.host('pu') },
    );
    expect(await pu.resolve('svc')).toHaveLength(1);
    lab.net.kill('r1');
    const p = pu.resolve('svc');
    await lab.advance(1_100);
    expect(await p).toHaveLength(1);
    expect(pu.registrar).toBe('memory://r2');
    await pu.close();
  });
});
