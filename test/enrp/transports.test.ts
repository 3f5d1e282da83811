/**
 * ENRP between registrars over each transport (tcp://, sctp+udp://, and
 * sctp:// as root), on 127.0.0.2-4, the system clock: one suite per transport.
 */
import { afterEach, expect, it } from 'vitest';
import { describeSctp } from '../support/raw-sctp.js';
import { createHandlespace, type Handlespace } from '../../lib/handlespace/index.js';
import { createEnrpServer, type EnrpServer, type EnrpTimers } from '../../lib/enrp/index.js';
import { createTransports, type TransportsInit } from '../../lib/transport/index.js';
import { waitFor, withDeadline } from '../transport/util.js';
import { pe } from './cluster.js';

const schemes = ['tcp', 'sctp+udp', 'sctp'] as const;

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

/** Resolves once `done()` holds, checking after each of the named events; never polls a timer. */
function until(
  done: () => boolean,
  sources: { on(e: string, f: () => void): unknown; off(e: string, f: () => void): unknown; events: string[] }[],
  ms: number,
  what: string,
): Promise<void> {
  let check: () => void = () => {};
  const p = new Promise<void>((resolve) => {
    check = () => {
      if (done()) resolve();
    };
    for (const s of sources) for (const e of s.events) s.on(e, check);
    check();
  });
  return withDeadline(p, ms, what).finally(() => {
    for (const s of sources) for (const e of s.events) s.off(e, check);
  });
}

for (const scheme of schemes) {
  describeSctp(scheme, `ENRP over ${scheme}://`, () => {
    async function node(id: number, host: string, peers: string[]): Promise<Node> {
      const hs = createHandlespace();
      const init = { id, handlespace: hs, listen: [`${scheme}://${host}:0`], peers, multicast: false as const, timers: TIMERS };
      const server =
        scheme === 'tcp'
          ? createEnrpServer(init)
          : createEnrpServer(init, { transportFor: createTransports({ tcp: false, [scheme]: {} } as TransportsInit).transportFor });
      await server.start();
      const n = { hs, server };
      running.push(n);
      return n;
    }

    const watch = (nodes: Node[]): Parameters<typeof until>[1] =>
      nodes.flatMap((n) => [
        {
          on: (e: string, f: () => void) => n.server.events.on(e as 'peer-up', f),
          off: (e: string, f: () => void) => n.server.events.off(e as 'peer-up', f),
          events: ['peer-up', 'synchronised'],
        },
        {
          on: (e: string, f: () => void) => n.hs.events.on(e as 'added', f),
          off: (e: string, f: () => void) => n.hs.events.off(e as 'added', f),
          events: ['added', 'takeover'],
        },
      ]);

    it('3 registrars on 127.0.0.2-4 sync PEs; when one stops abruptly a survivor takes its PEs over', async () => {
      const a = await node(1, '127.0.0.2', []);
      const aUrl = a.server.listenUrls[0]!;
      expect(aUrl.startsWith(`${scheme}://127.0.0.2:`)).toBe(true);
      // b and c know only a; they meet through a's list response.
      const b = await node(2, '127.0.0.3', [aUrl]);
      const c = await node(3, '127.0.0.4', [aUrl]);
      const all = [a, b, c];
      await until(
        () => all.every((n) => n.server.synchronised && n.server.peers().filter((p) => p.state === 'up').length === 2),
        watch(all),
        10_000,
        'full mesh',
      );
      for (let k = 1; k <= 5; k++) a.hs.register(`${scheme}-pool`, pe(k, 1), { ownerId: 1 });
      for (let k = 6; k <= 8; k++) b.hs.register(`${scheme}-pool`, pe(k, 2), { ownerId: 2 });
      await until(() => all.every((n) => n.hs.size === 8), watch(all), 10_000, 'sync of 8 PEs');
      expect(c.hs.ownedCount(1)).toBe(5);

      const takeover = Promise.race([
        waitFor(b.server.events, 'takeover', { timeoutMs: 5_000 }).then(([from, entries]) => ({ by: 2, from, n: entries.length })),
        waitFor(c.server.events, 'takeover', { timeoutMs: 5_000 }).then(([from, entries]) => ({ by: 3, from, n: entries.length })),
      ]);
      await a.server.stop(); // connections reset or associations aborted, no goodbye
      expect(await takeover).toEqual({ by: 2, from: 1, n: 5 });
      await until(() => c.hs.ownedCount(2) === 8 && c.hs.ownedCount(1) === 0, watch([c]), 5_000, 'takeover seen by c');
      expect(b.hs.ownedCount(2)).toBe(8);
    });
  });
}
