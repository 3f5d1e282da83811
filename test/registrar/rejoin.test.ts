import { afterEach, describe, expect, it } from 'vitest';
import { AsapMessageType, type AsapHandleResolutionResponse } from '../../protocols/asap/types.js';
import { ErrorCause } from '../../protocols/parameters/types.js';
import type { RegistrarNode } from '../../lib/registrar/index.js';
import { createIdentityCluster, type IdentityCluster } from './identity-cluster.js';
import { te } from './helpers.js';

let cluster: IdentityCluster | undefined;
afterEach(async () => {
  await cluster?.teardown();
  cluster = undefined;
});

const host = (i: number): string => `127.1.0.${i + 1}`;

describe('registrar back from a partition', () => {
  /**
   * Chaos seed 504: registrar 1, cut off from both peers, drops them as silent (they own nothing in its
   * copy) while its PE moves to registrar 2. Registrar 1 then hears registrar 3 again just as registrar 2
   * is cut off: its copy has no PE of the pool, and only registrar 2's takeover by 3 brings it back.
   */
  it('answers a pool its copy lacks with Lack of Resources (not final) until the PE that moved meanwhile reaches it; final again once whole', async () => {
    const c = await createIdentityCluster(3, { secure: false, init: { keepAliveIntervalMs: 600_000 } });
    cluster = c;
    const [r1, r2, r3] = c.nodes as [RegistrarNode, RegistrarNode, RegistrarNode];
    const pe = await c.client(0, '127.3.0.1');
    expect((await c.register(pe, 7, 7000, 600_000)).error).toBeUndefined();
    await c.until(() => [r2, r3].every((n) => n.registrar.handlespace.size === 1), 5_000, 'PE known everywhere');

    // Registrar 1 is cut off; the PE leaves it for registrar 2 (its update to the peers is lost).
    c.net.partition([host(0)], [host(1), host(2)]);
    pe.send({ type: AsapMessageType.Deregistration, handle: te('svc'), identifier: 7 });
    await c.until(() => r1.registrar.handlespace.size === 0, 5_000, 'deregistered at registrar 1');
    const moved = await c.client(1, '127.3.0.1');
    expect((await c.register(moved, 7, 7000, 600_000)).error).toBeUndefined();
    await c.until(() => r3.registrar.handlespace.get(te('svc'), 7)?.homeRegistrarId === r2.id, 5_000, 'PE homed at registrar 2 at registrar 3');
    await c.until(() => r1.status().peers.length === 0, 30_000, 'registrar 1 drops its silent peers');

    // Registrar 1 hears registrar 3 again, as registrar 2 is cut off.
    c.net.heal();
    c.net.partition([host(1)], [host(0), host(2)]);
    const pu = await c.client(0, '127.4.0.1');
    const resolve = async (handle: string): Promise<AsapHandleResolutionResponse> => {
      pu.send({ type: AsapMessageType.HandleResolution, handle: te(handle) });
      await c.until(() => pu.received.some((m) => m.type === AsapMessageType.HandleResolutionResponse), 2_000, 'resolution answer');
      return pu.next(AsapMessageType.HandleResolutionResponse);
    };
    await c.until(() => r1.status().peers.some((p) => p.id === r3.id && p.state === 'up'), 10_000, 'registrar 1 hears registrar 3');
    const answers: string[] = [];
    for (;;) {
      const res = await resolve('svc');
      if (res.elements.length > 0) {
        expect(res.elements.map((e) => e.identifier)).toEqual([7]);
        break;
      }
      const code = res.error?.[0]?.code;
      answers.push(code === ErrorCause.LackOfResources ? 'lack of resources' : `cause ${code}`);
      // Never final while the PE is registered with registrar 2 (and, after its takeover, with 3).
      expect(answers.at(-1)).toBe('lack of resources');
      expect(answers.length).toBeLessThan(200);
      await c.advance(100);
    }
    expect(answers.length).toBeGreaterThan(0);

    // Whole again: a pool nobody has is final.
    c.net.heal();
    await c.until(() => [r1, r2, r3].every((n) => n.status().peers.filter((p) => p.state === 'up').length === 2), 30_000, 'cluster whole');
    await c.advance(20_000);
    expect((await resolve('nothing')).error?.[0]?.code).toBe(ErrorCause.UnknownPoolHandle);
  });
});
