/** A short flood and a 3 s live fuzz against a registrar and a TFTP PE as real processes on loopback. */
import { describe, expect, it } from 'vitest';
import { runFlood, totalEchoes } from './flood.js';
import { runLiveFuzz } from '../fuzz/live.js';

describe('under hostile load, as real processes on loopback', () => {
  it('a short flood kills nothing, the legitimate registration and download complete, and nobody gets more than one packet back before answering', async () => {
    const r = await runFlood({ connections: 200, rrqs: 60, echoes: 300, fileBytes: 1 << 20, quietMs: 1500, legitTimeoutMs: 40_000 });
    expect(r.problems).toEqual([]);
    expect(r.legit.registerAndResolve.ok).toBe(true);
    expect(r.legit.get.ok).toBe(true);
    expect(r.connections.attempted).toBe(200);
    // A cookie echo from an address it was not issued to gets no more bytes back than it carried.
    for (const e of r.echoes) {
      expect(e.datagramsSent, e.kind).toBeGreaterThan(0);
      expect(e.factor, e.kind).toBeLessThanOrEqual(1);
      expect(e.datagramsReceived, e.kind).toBeLessThanOrEqual(e.sources);
    }
    expect(totalEchoes(r.echoes).factor).toBeLessThanOrEqual(1);
    // A bare RRQ never answered: at most one datagram back per source, no resends.
    expect(r.rrq.datagramsReceived).toBeLessThanOrEqual(r.rrq.sources);
  }, 120_000);

  it('3 s of mutated ASAP, ENRP and TFTP/cookie-echo messages leave every process up and serving', async () => {
    const r = await runLiveFuzz({ seconds: 3, seed: 0x11fe });
    expect(r.problems).toEqual([]);
    for (const p of r.ports) expect(p.sent, p.target).toBeGreaterThan(100);
    expect(r.after.registerAndResolve.ok).toBe(true);
    expect(r.after.get.ok).toBe(true);
  }, 90_000);
});
