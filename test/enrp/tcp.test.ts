import { afterEach, describe, expect, it } from 'vitest';
import { createHandlespace, type Handlespace } from '../../lib/handlespace/index.js';
import { createEnrpServer, type EnrpServer, type EnrpTimers } from '../../lib/enrp/index.js';
import { waitFor, withDeadline } from '../transport/util.js';
import { pe } from './cluster.js';

const TIMERS: Partial<EnrpTimers> = {
  peerHeartbeatCycleMs: 100,
  maxTimeLastHeardMs: 300,
  maxTimeNoResponseMs: 200,
  takeoverExpiryMs: 300,
  mentorDiscoveryMs: 300,
};

interface Node {
  hs: Handlespace;
  server: EnrpServer;
}
const running: Node[] = [];
afterEach(async () => {
  for (const n of running.splice(0)) {
    await n.server.stop();
    n.hs.close();
  }
});

async function node(id: number, host: string, peers: string[]): Promise<Node> {
  const hs = createHandlespace();
  const server = createEnrpServer({ id, handlespace: hs, listen: [`tcp://${host}:0`], peers, multicast: false, timers: TIMERS });
  await server.start();
  const n = { hs, server };
  running.push(n);
  return n;
}

/** Polls a condition on the real clock, with a deadline. */
async function eventually(pred: () => boolean, ms: number, what: string): Promise<void> {
  await withDeadline(
    (async () => {
      while (!pred()) await new Promise((r) => setTimeout(r, 10));
    })(),
    ms,
    what,
  );
}

describe('ENRP over TCP', () => {
  it('enrp - 3 registrars on 127.0.0.2-4 sync PEs; when one stops abruptly a survivor takes its PEs over', async () => {
    const a = await node(1, '127.0.0.2', []);
    const aUrl = a.server.listenUrls[0]!;
    // b and c know only a; they meet through a's list response.
    const b = await node(2, '127.0.0.3', [aUrl]);
    const c = await node(3, '127.0.0.4', [aUrl]);
    await eventually(() => [a, b, c].every((n) => n.server.synchronised && n.server.peers().filter((p) => p.state === 'up').length === 2), 5_000, 'full mesh');
    for (let k = 1; k <= 5; k++) a.hs.register('tcp-pool', pe(k, 1), { ownerId: 1 });
    for (let k = 6; k <= 8; k++) b.hs.register('tcp-pool', pe(k, 2), { ownerId: 2 });
    await eventually(() => [a, b, c].every((n) => n.hs.size === 8), 5_000, 'sync of 8 PEs');
    expect(c.hs.ownedCount(1)).toBe(5);

    const takeover = Promise.race([
      waitFor(b.server.events, 'takeover', { timeoutMs: 5_000 }).then(([from, entries]) => ({ by: 2, from, n: entries.length })),
      waitFor(c.server.events, 'takeover', { timeoutMs: 5_000 }).then(([from, entries]) => ({ by: 3, from, n: entries.length })),
    ]);
    const t0 = performance.now();
    await a.server.stop(); // connections reset, no goodbye
    const got = await takeover;
    const took = performance.now() - t0;
    expect(got).toEqual({ by: 2, from: 1, n: 5 });
    expect(took).toBeLessThan(300 + 200 + 1_000);
    await eventually(() => c.hs.ownedCount(2) === 8 && c.hs.ownedCount(1) === 0, 2_000, 'takeover seen by c');
    expect(b.hs.ownedCount(2)).toBe(8);
  });
});
