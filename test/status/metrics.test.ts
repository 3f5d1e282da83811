/**
 * The metrics the CLI run (test/web/metrics.integration.test.ts) cannot
 * script easily, scraped after an in-process run: cookies refused by reason,
 * cookies issued per interval, unreachable reports ignored, ENRP messages by
 * type and the handle-table sync time.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { EventEmitter } from 'eventemitter3';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createRegistrarMetrics, createTftpGatewayMetrics, createTftpServerMetrics } from '../../lib/metrics.js';
import type { TftpGateway } from '../../lib/tftp/gateway/index.js';
import type { TftpServer } from '../../lib/tftp/server/index.js';
import { createPoolUser } from '../../lib/pool-user/index.js';
import { createRegistrar, createRegistrarNode, type RegistrarNode } from '../../lib/registrar/index.js';
import { COOKIE_OPTION } from '../../lib/tftp/contract.js';
import { createTftpPoolElement } from '../../lib/tftp/server/index.js';
import { encodeAsapMessage } from '../../protocols/asap/codec.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { TftpOpcode } from '../../protocols/tftp/types.js';
import { RawPeer, download, tempDir } from '../tftp/server-helpers.js';
import { waitFor } from '../transport/util.js';

function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = (m[2] ?? '')
      .split(',')
      .filter((l) => l && !l.startsWith('registrar='))
      .join(',');
    out.set(labels ? `${m[1]}{${labels}}` : m[1]!, Number(m[3]));
  }
  return out;
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('TFTP PE metrics', () => {
  it('count cookies issued per interval, a forged echo refused as bad-signature, and a transfer started and done', async () => {
    const d = await tempDir('rserpool-tftp-metrics-');
    cleanups.push(d.remove);
    const content = randomBytes(51_200); // 100 blocks of 512
    await writeFile(join(d.path, 'f.bin'), content);
    const registrar = createRegistrar({ asap: ['tcp://127.0.0.1:0'], announce: false });
    await registrar.start();
    cleanups.push(() => registrar.stop());
    const pe = createTftpPoolElement({
      root: d.path,
      handle: 'm',
      registrars: [registrar.addresses[0]!.href],
      port: 0,
      secret: 'a secret of this pool, 32 bytes!',
    });
    const metrics = createTftpServerMetrics(pe.server, { processMetrics: false });
    cleanups.push(() => metrics.close());
    await pe.start();
    cleanups.push(() => pe.stop());
    const client = await RawPeer.open();
    cleanups.push(() => client.close());
    const ended = waitFor(pe.server, 'transfer-end');
    const r = await download(client, pe.address.port, 'f.bin', [[COOKIE_OPTION, '10']]);
    expect(r.data.equals(content)).toBe(true);
    await ended;
    // From a fresh port: nothing left over from the download answers in between.
    const forger = await RawPeer.open();
    cleanups.push(() => forger.close());
    forger.send(encodeAsapMessage({ type: AsapMessageType.CookieEcho, cookie: Buffer.concat([Buffer.from([2]), randomBytes(119)]) }), pe.address.port);
    expect((await forger.nextTftp(10_000, () => {})).packet.opcode).toBe(TftpOpcode.Error);
    const m = parse(await metrics.text());
    expect(m.get('rserpool_tftp_cookies_issued_total')).toBe(r.cookies.length);
    expect(r.cookies.length).toBeGreaterThanOrEqual(9);
    expect(m.get('rserpool_tftp_cookies_refused_total{reason="bad-signature"}')).toBe(1);
    expect(m.get('rserpool_tftp_cookies_accepted_total')).toBe(0);
    expect(m.get('rserpool_tftp_transfers_started_total{kind="read"}')).toBe(1);
    expect(m.get('rserpool_tftp_transfers_finished_total{kind="read",outcome="done"}')).toBe(1);
    expect(m.get('rserpool_tftp_sent_bytes_total')).toBe(content.length);
  });
});

describe('registrar metrics - ENRP and unreachable reports', () => {
  it('count ENRP messages by type, the handle-table sync time, and unreachable reports of unknown PEs as ignored', async () => {
    const nodes: RegistrarNode[] = [];
    const enrp = (peers: string[]) => ({
      listen: ['tcp://127.0.0.1:0'],
      peers,
      multicast: false as const,
      timers: { mentorDiscoveryMs: 300, peerHeartbeatCycleMs: 200 },
    });
    const a = createRegistrarNode({ id: 0xa, asap: ['tcp://127.0.0.1:0'], announce: false, enrp: enrp([]) });
    nodes.push(a);
    cleanups.push(() => Promise.all(nodes.map((n) => n.stop())));
    await a.start();
    const b = createRegistrarNode({ id: 0xb, asap: ['tcp://127.0.0.1:0'], announce: false, enrp: enrp([a.enrp!.listenUrls[0]!]) });
    nodes.push(b);
    a.registrar.handlespace.register('p', {
      identifier: 7,
      homeRegistrarId: 0xa,
      registrationLife: 60_000,
      userTransport: { protocol: 'udp', port: 9, addresses: ['127.0.0.1'], transportUse: 0 },
      policy: { type: 1 },
    } as never);
    const metrics = createRegistrarMetrics(b, { processMetrics: false });
    cleanups.push(() => metrics.close());
    const synced = waitFor(b.enrp!.events, 'synchronised', { timeoutMs: 10_000 });
    await b.start();
    await synced;

    const pu = createPoolUser({ registrars: [b.registrar.addresses[0]!.href], discovery: false });
    cleanups.push(() => pu.stop());
    await pu.reportUnreachable('nobody', 1234);
    await pu.reportUnreachable('nobody', 1235);
    // The reports went out on the PU's ASAP connection; a resolution after them on the same connection proves they arrived.
    expect((await pu.resolve('p', { fresh: true })).map((e) => e.identifier)).toEqual([7]);

    const m = parse(await metrics.text());
    expect(m.get('rserpool_unreachable_reports_total')).toBe(2);
    expect(m.get('rserpool_unreachable_reports_ignored_total')).toBe(2);
    expect(m.get('rserpool_enrp_messages_sent_by_type_total{type="handle_table_request"}')).toBeGreaterThanOrEqual(1);
    expect(m.get('rserpool_enrp_messages_received_by_type_total{type="handle_table_response"}')).toBeGreaterThanOrEqual(1);
    expect(m.get('rserpool_enrp_messages_received_by_type_total{type="presence"}')).toBeGreaterThanOrEqual(1);
    const sync = m.get('rserpool_enrp_handle_table_sync_seconds')!;
    expect(sync).toBeGreaterThan(0);
    expect(sync).toBeLessThan(10);
    expect(b.registrar.handlespace.size).toBe(1);
  });
});

describe('examples/grafana-dashboard.json', () => {
  it('names only metrics that the registrar, PE and gateway export', async () => {
    const node = createRegistrarNode({ asap: ['tcp://127.0.0.1:0'], announce: false, enrp: { listen: ['tcp://127.0.0.1:0'], multicast: false } });
    const reg = createRegistrarMetrics(node);
    const fake = (): object => Object.assign(new EventEmitter(), { activeTransfers: 0 });
    const pe = createTftpServerMetrics(fake() as TftpServer, { processMetrics: false });
    const gw = createTftpGatewayMetrics(fake() as TftpGateway, { processMetrics: false });
    cleanups.push(() => [reg, pe, gw].forEach((m) => m.close()));
    const exported = new Set((await Promise.all([reg, pe, gw].map((m) => m.registry.getMetricsAsJSON()))).flat().map((m) => m.name));
    const dashboard = readFileSync(new URL('../../examples/grafana-dashboard.json', import.meta.url), 'utf8');
    const used = new Set([...dashboard.matchAll(/\b((?:rserpool|process)_[a-z_]+)/g)].map((m) => m[1]!.replace(/_(bucket|count|sum)$/, '')));
    expect(used.size).toBeGreaterThan(20);
    expect([...used].filter((n) => !exported.has(n))).toEqual([]);
  });
});
