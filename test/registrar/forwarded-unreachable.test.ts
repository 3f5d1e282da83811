/**
 * RFC 5355 5.1 across a cluster: unreachable reports about a PE homed at
 * another registrar reach its home, which probes the PE with a keep-alive and
 * removes it only when the probe times out.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { decodeAsapMessage, encodeAsapMessage } from '../../protocols/asap/codec.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { createRegistrarMetrics } from '../../lib/metrics.js';
import { createIdentityCluster, psk, type IdentityCluster } from './identity-cluster.js';
import { te, type RawClient } from './helpers.js';

let cluster: IdentityCluster | undefined;
afterEach(async () => {
  await cluster?.teardown();
  cluster = undefined;
});

// A keep-alive cycle of 30 s: a removal within a few seconds comes from a probe, not from supervision.
const INIT = { keepAliveIntervalMs: 30_000, keepAliveTimeoutMs: 1_000 };
const LIFE = 600_000;

/** Answers the registrar's keep-alives while `answering.on`. */
function answerKeepAlives(pe: RawClient, answering: { on: boolean }): void {
  pe.conn.on('message', (bytes) => {
    const m = decodeAsapMessage(bytes);
    if (m.type === AsapMessageType.EndpointKeepAlive && m.identifier !== undefined && answering.on) {
      pe.conn.send(encodeAsapMessage({ type: AsapMessageType.EndpointKeepAliveAck, handle: m.handle, identifier: m.identifier }));
    }
  });
}

async function report(c: IdentityCluster, at: number, reporters: number, identifier: number): Promise<void> {
  for (let i = 1; i <= reporters; i++) {
    const pu = await c.client(at, `10.0.1.${i}`, psk(`pu-${i}`));
    pu.send({ type: AsapMessageType.EndpointUnreachable, handle: te('svc'), identifier });
  }
}

describe('unreachable reports about a PE homed at another registrar', () => {
  it('thirty reporters at another registrar do not remove a live PE: its home probes it once and it answers', async () => {
    const c = (cluster = await createIdentityCluster(3, { init: INIT }));
    const [r1, r2] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];
    const pe = await c.client(0, '10.0.0.1', psk('pe-a'));
    answerKeepAlives(pe, { on: true });
    expect((await c.register(pe, 1, 7001, LIFE)).error).toBeUndefined();
    await c.until(() => c.nodes.every((n) => n.registrar.handlespace.has('svc', 1)), 5_000, 'replicated');
    await report(c, 1, 30, 1);
    await c.until(() => r1.registrar.counters.unreachableProbes === 1, 5_000, 'home probes the PE');
    await c.advance(5_000);
    for (const n of c.nodes) expect(n.registrar.handlespace.has('svc', 1)).toBe(true);
    // Counted and limited at the registrar that heard them: one forward for the PE, one probe.
    expect(r2.registrar.counters.unreachableReports).toBe(30);
    expect(r2.enrp!.status().counters.unreachableForwarded).toBe(1);
    expect(r1.enrp!.status().counters.unreachableReceived).toBe(1);
    expect(r1.registrar.counters.unreachableProbes).toBe(1);
    // ... and exported for Prometheus.
    for (const [node, line] of [
      [r2, /^rserpool_enrp_unreachable_forwarded_total\{[^}]*\} 1$/m],
      [r1, /^rserpool_enrp_unreachable_received_total\{[^}]*\} 1$/m],
    ] as const) {
      const metrics = createRegistrarMetrics(node, { processMetrics: false });
      try {
        expect(await metrics.text()).toMatch(line);
      } finally {
        metrics.close();
      }
    }
  });

  it('a PE that died is removed cluster-wide after its home probes it, long before its next keep-alive', async () => {
    const c = (cluster = await createIdentityCluster(3, { init: INIT }));
    const [r1] = c.nodes as [(typeof c.nodes)[0]];
    const pe = await c.client(0, '10.0.0.1', psk('pe-a'));
    const answering = { on: true };
    answerKeepAlives(pe, answering);
    expect((await c.register(pe, 2, 7002, LIFE)).error).toBeUndefined();
    await c.until(() => c.nodes.every((n) => n.registrar.handlespace.has('svc', 2)), 5_000, 'replicated');
    answering.on = false; // hung: its connection stays open, nothing answers
    const start = c.clock.now();
    await report(c, 1, 3, 2);
    await c.until(() => c.nodes.every((n) => !n.registrar.handlespace.has('svc', 2)), 10_000, 'removed everywhere');
    expect(c.clock.now() - start).toBeLessThan(INIT.keepAliveIntervalMs / 5);
    expect(r1.registrar.counters.unreachableProbes).toBe(1);
  });
});
