import { afterEach, describe, expect, it } from 'vitest';
import { createHandlespace, type Handlespace } from '../../lib/handlespace/index.js';
import type { Refusal } from '../../lib/enrp/index.js';
import { ErrorCause, PolicyType } from '../../protocols/parameters/types.js';
import { createTransports } from '../../lib/transport/index.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { createCluster, pe, type Cluster } from '../enrp/cluster.js';
import { RawClient, element, te } from '../registrar/helpers.js';
import { runCli, startCli } from '../cli/run.js';

let cluster: Cluster | undefined;
let hs: Handlespace | undefined;
afterEach(async () => {
  await cluster?.teardown();
  cluster = undefined;
  hs?.close();
  hs = undefined;
});

describe('caps on what peers can make a registrar hold', () => {
  it("enrp - PEs learned from peers stop at maxPeerPoolElements (Lack of Resources); the sender's updates of held ones still apply", async () => {
    cluster = createCluster({ init: { maxPeerPoolElements: 2 } });
    const [a, b] = await cluster.spawn(2);
    await cluster.settle();
    const refusals: Refusal[] = [];
    b!.server.events.on('refused', (r) => refusals.push(r));
    for (let k = 1; k <= 4; k++) a!.hs.register('cap', pe(k, 1), { ownerId: 1 });
    await cluster.advance(50);
    expect(b!.hs.size).toBe(2);
    expect(refusals).toHaveLength(2);
    expect(refusals[0]!.error.code).toBe('RSP_ERR_ENRP_REJECTED_ENTRY');
    // An update of a PE already held is no new state: applied.
    a!.hs.register('cap', pe(1, 1, 7001), { ownerId: 1 });
    await cluster.advance(50);
    expect(b!.hs.get('cap', 1)?.userTransport.port).toBe(7001);
    // Its own PEs are not what the cap counts.
    expect(b!.hs.register('own', pe(50, 2), { ownerId: 2 }).ok).toBe(true);
  });

  it('handlespace - a PE that would open a pool past maxPools is refused with Lack of Resources', () => {
    hs = createHandlespace({ maxPools: 2 });
    expect(hs.register('p1', pe(1, 1)).ok).toBe(true);
    expect(hs.register('p2', pe(2, 1)).ok).toBe(true);
    expect(hs.register('p2', pe(3, 1)).ok).toBe(true);
    const r = hs.register('p3', pe(4, 1));
    expect(r.ok === false && r.cause).toBe(ErrorCause.LackOfResources);
    expect(hs.poolCount).toBe(2);
  });

  it('handlespace - consistent-hash ring points stop at maxRingPoints, for new PEs and for weight increases', () => {
    hs = createHandlespace({ maxRingPoints: 96, virtualNodes: 32 });
    const ch = (id: number, weight: number) => ({ ...pe(id, 1), policy: { type: PolicyType.ConsistentHash, weight } as const });
    expect(hs.register('ring', ch(1, 1)).ok).toBe(true); // 32 points
    expect(hs.register('ring', ch(2, 2)).ok).toBe(true); // 64 more: 96
    const more = hs.register('ring', ch(3, 1));
    expect(more.ok === false && more.cause).toBe(ErrorCause.LackOfResources);
    const heavier = hs.register('ring', ch(1, 2));
    expect(heavier.ok === false && heavier.cause).toBe(ErrorCause.LackOfResources);
    // Points come back when a PE leaves.
    hs.deregister('ring', 2);
    expect(hs.register('ring', ch(3, 2)).ok).toBe(true);
    expect(hs.resolve('ring', { items: 2, clientKey: 'k' })).toHaveLength(2);
  });
});

describe('rserpool registrar - cap and limit flags', () => {
  it('--max-pools applies to ASAP registrations; limits that no HANDLE_UPDATE could carry are refused at start', async () => {
    const p = startCli(['registrar', '--asap', 'tcp://127.0.7.3:0', '--http', 'off', '--announce', 'off', '--max-pools', '1']);
    try {
      const [, url] = (await p.waitForLine(/^registrar \S+ asap (\S+)/))!;
      const c = await RawClient.connect(createTransports({}), url!);
      c.send({ type: AsapMessageType.Registration, handle: te('one'), element: element(1) });
      expect((await c.next(AsapMessageType.RegistrationResponse, () => true, 10_000)).error).toBeUndefined();
      c.send({ type: AsapMessageType.Registration, handle: te('two'), element: element(2) });
      expect((await c.next(AsapMessageType.RegistrationResponse, () => true, 10_000)).error?.[0]?.code).toBe(ErrorCause.LackOfResources);
      await c.conn.close();
    } finally {
      p.kill('SIGKILL');
      await p.exited;
    }
    const bad = await runCli([
      'registrar',
      '--asap',
      'tcp://127.0.7.3:0',
      '--http',
      'off',
      '--announce',
      'off',
      '--max-handle-length',
      '60000',
      '--max-pe-bytes',
      '60000',
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/RSP_ERR_INVALID_OPTION: .*HANDLE_UPDATE/);
  });
});
