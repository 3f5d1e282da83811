/** Prometheus metrics of a registrar node, scraped over HTTP as Prometheus would. */
import { afterEach, describe, expect, it } from 'vitest';
import { PolicyType } from '../../protocols/parameters/types.js';
import { createRegistrarNode, type RegistrarNode } from '../../lib/registrar/index.js';
import { createPoolElement } from '../../lib/pool-element/index.js';
import { createPoolUser } from '../../lib/pool-user/index.js';
import { createRegistrarMetrics, type RegistrarMetrics } from '../../lib/metrics.js';
import { startStatusServer, type StatusServer } from '../../lib/status/http.js';
import { waitFor } from '../transport/util.js';

/** `name{labels} value` lines of the exposition format, the registrar label left out. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels = (m[2] ?? '')
      .split(',')
      .filter((l) => l && !l.startsWith('registrar='))
      .join(',');
    out.set(labels ? `${m[1]}{${labels}}` : m[1]!, Number(m[3]));
  }
  return out;
}

let node: RegistrarNode | undefined;
let metrics: RegistrarMetrics | undefined;
let http: StatusServer | undefined;
afterEach(async () => {
  await http?.close();
  metrics?.close();
  await node?.stop();
  node = undefined;
  metrics = undefined;
  http = undefined;
});

const transport = (port: number) => ({ protocol: 'tcp' as const, port, addresses: ['127.0.0.1'], transportUse: 0 as const });

describe('registrar metrics', () => {
  it('GET /metrics counts registrations, resolutions, refusals and deregistrations and shows the handlespace', async () => {
    node = createRegistrarNode({ asap: ['tcp://127.0.0.1:0'], announce: false, id: 0x51 });
    await node.start();
    metrics = createRegistrarMetrics(node, { processMetrics: false });
    http = await startStatusServer({ port: 0, status: () => node!.status(), metrics });
    const scrape = async (): Promise<Map<string, number>> => {
      const res = await fetch(`${http!.url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      const text = await res.text();
      expect(text).toContain('registrar="0x00000051"');
      return parse(text);
    };
    const url = node.registrar.addresses[0]!.href;

    const before = await scrape();
    expect(before.get('rserpool_pool_elements')).toBe(0);
    expect(before.get('rserpool_synchronised')).toBe(1);

    const pe = createPoolElement({ handle: 'm', policy: { type: PolicyType.RoundRobin }, userTransport: transport(7200), registrars: [url], identifier: 1 });
    await pe.start();
    // same handle, another policy: refused with the RFC's cause
    const odd = createPoolElement({
      handle: 'm',
      policy: { type: PolicyType.LeastUsed, load: 0 },
      userTransport: transport(7201),
      registrars: [url],
      identifier: 2,
      startTimeoutMs: 2_000,
    });
    await expect(odd.start()).rejects.toThrow();
    const pu = createPoolUser({ registrars: [url], cacheTtlMs: 0 });
    try {
      expect(await pu.resolve('m')).toHaveLength(1);
      await expect(pu.resolve('nothing-here')).rejects.toThrow();
    } finally {
      await pu.close();
    }

    const during = await scrape();
    expect(during.get('rserpool_pools')).toBe(1);
    expect(during.get('rserpool_pool_elements')).toBe(1);
    expect(during.get('rserpool_pool_elements_owned')).toBe(1);
    expect(during.get('rserpool_registrations_total{kind="new"}')).toBe(1);
    expect(during.get('rserpool_handle_resolutions_total')).toBe(2);
    expect(during.get('rserpool_handle_resolutions_unknown_total')).toBe(1);
    expect([...during.keys()].filter((k) => k.startsWith('rserpool_registrations_refused_total{')).map((k) => during.get(k))).toEqual([1]);
    expect(during.get('rserpool_asap_connections')).toBeGreaterThanOrEqual(1);

    const gone = waitFor(node.registrar, 'deregistered');
    await pe.stop();
    await gone;
    const after = await scrape();
    expect(after.get('rserpool_deregistrations_total')).toBe(1);
    expect(after.get('rserpool_pool_elements')).toBe(0);
    // counters never go back
    expect(after.get('rserpool_handle_resolutions_total')).toBe(2);
  });

  it('without metrics, /metrics is not found and /status still answers', async () => {
    node = createRegistrarNode({ asap: ['tcp://127.0.0.1:0'], announce: false });
    await node.start();
    http = await startStatusServer({ port: 0, status: () => node!.status() });
    expect((await fetch(`${http.url}/metrics`)).status).toBe(404);
    expect((await fetch(`${http.url}/status`)).status).toBe(200);
  });
});
