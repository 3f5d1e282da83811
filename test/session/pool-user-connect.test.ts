import { afterEach, describe, expect, it } from 'vitest';
import { createRegistrar, type Registrar } from '../../lib/registrar/index.js';
import { createPoolElement, type PoolElement } from '../../lib/pool-element/index.js';
import { createPoolUser, type PoolUser } from '../../lib/pool-user/index.js';
import { userTransportOf, type SessionServer } from '../../lib/session/index.js';
import { silentLogger } from '../../lib/logger.js';
import { PolicyType } from '../../protocols/parameters/types.js';
import { POOL_HANDLE } from '../../examples/counter/common.js';
import { runCounterClient } from '../../examples/counter/client.js';
import { startCounterServer } from '../../examples/counter/server.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

describe('pool user sessions through a registrar', () => {
  it('pu.connect(handle) resolves through the registrar, and the counter goes on from the cookie when its PE dies', async () => {
    const registrar: Registrar = createRegistrar({ asap: ['tcp://127.0.0.1:0'], announce: false });
    await registrar.start();
    cleanups.push(() => registrar.stop());
    const url = registrar.addresses[0]!.href;

    const pes: { server: SessionServer; pe: PoolElement }[] = [];
    for (let i = 0; i < 2; i++) {
      const server = await startCounterServer({ listen: 'tcp://127.0.0.1:0' }, silentLogger);
      const pe = createPoolElement({
        handle: POOL_HANDLE,
        policy: { type: PolicyType.RoundRobin },
        userTransport: userTransportOf(server.address),
        registrars: [url],
      });
      await pe.start();
      cleanups.push(
        () => server.stop(),
        () => pe.stop(),
      );
      pes.push({ server, pe });
    }

    const pu: PoolUser = createPoolUser({ registrars: [url] });
    cleanups.push(() => pu.close());
    const session = await pu.connect(POOL_HANDLE, { heartbeatIntervalMs: 0 });
    cleanups.push(() => session.close());
    const failovers: { from: number; to: number; echoed: boolean }[] = [];
    session.on('failover', (f) => failovers.push({ from: f.from.identifier, to: f.to.identifier, echoed: f.cookieEchoed }));

    const first = session.pe.identifier;
    const values = await runCounterClient(session, {
      count: 8,
      onValue: async (_v, seq) => {
        if (seq !== 4) return;
        // The serving PE dies without a word: its connections are reset, its registration stays.
        await pes.find((p) => p.pe.identifier === first)!.server.stop();
      },
    });
    expect(values).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(failovers).toEqual([{ from: first, to: pes.find((p) => p.pe.identifier !== first)!.pe.identifier, echoed: true }]);
  });
});
