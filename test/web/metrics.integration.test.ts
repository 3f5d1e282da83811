/**
 * Metrics after a scripted run, scraped over HTTP as Prometheus would: a
 * registrar, two `tftp serve` PEs and a `tftp gateway`, each with --http;
 * curl fetches a file through the gateway and the serving PE is killed with
 * kill -9 half-way. Then every counter must say what happened: one failover,
 * resumed from a cookie at the other PE, one keep-alive timeout.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startCli, type CliProcess } from '../cli/run.js';

const run = promisify(execFile);
const SIZE = 30_000_000;
const dir = mkdtempSync(join(tmpdir(), 'rserpool-metrics-'));
const root = join(dir, 'root');
mkdirSync(root);
writeFileSync(join(root, 'big.bin'), randomBytes(SIZE));

const procs: CliProcess[] = [];
afterEach(async () => {
  for (const p of procs.splice(0)) {
    p.kill('SIGKILL');
    await p.exited;
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function start(args: string[]): CliProcess {
  const p = startCli(args);
  procs.push(p);
  return p;
}

/** `name{labels}` -> value, the constant labels (handle, registrar) left out. */
async function scrape(url: string): Promise<Map<string, number>> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = (m[2] ?? '')
      .split(',')
      .filter((l) => l && !/^(handle|registrar)=/.test(l))
      .join(',');
    out.set(labels ? `${m[1]}{${labels}}` : m[1]!, Number(m[3]));
  }
  return out;
}

describe('metrics of every component after a failover', () => {
  it('the surviving PE counts one transfer resumed from a cookie, the gateway one failover and its stall, the registrar one keep-alive timeout', async () => {
    const registrar = start([
      'registrar',
      '--asap',
      'tcp://127.0.0.1:0',
      '--http',
      '127.0.0.1:0',
      '--announce',
      'off',
      '--keep-alive-interval',
      '300ms',
      '--keep-alive-timeout',
      '300ms',
      '--print-events',
    ]);
    const [, asap, regHttp] = await registrar.waitForLine(/^registrar 0x[0-9a-f]{8} asap (\S+) status (\S+)\/status$/, 30_000);
    const pes = new Map<string, { proc: CliProcess; http: string }>();
    for (const id of ['0x0000b001', '0x0000b002']) {
      const proc = start([
        'tftp',
        'serve',
        '--root',
        root,
        '--registrar',
        asap!,
        '--port',
        '0',
        '--secret',
        'metrics test pool secret',
        '--identifier',
        id,
        '--http',
        '127.0.0.1:0',
      ]);
      await proc.waitForLine(new RegExp(`^serving .* as PE ${id} under files$`), 30_000);
      const [, http] = await proc.waitForLine(/^http (\S+)$/, 10_000);
      pes.set(id, { proc, http: http! });
    }
    const gw = start(['tftp', 'gateway', '--listen', '127.0.0.1:0', '--registrar', asap!, '--progress-interval', '20ms', '--http', '127.0.0.1:0']);
    const [, port] = await gw.waitForLine(/^gateway listening on 127\.0\.0\.1:(\d+) for files$/, 30_000);
    const [, gwHttp] = await gw.waitForLine(/^http (\S+)$/, 10_000);

    const curl = run('curl', ['-sS', '-o', join(dir, 'out.bin'), '--tftp-blksize', '8192', `tftp://127.0.0.1:${port}/big.bin`], { timeout: 60_000 });
    let serving: string | undefined;
    while (serving === undefined) {
      const [, total, received, id] = await gw.nextLine(/^transfer \d+: \d+ of (\d+) bytes delivered, (\d+) received from PE (0x[0-9a-f]{8})$/, 40_000);
      if (Number(received) > Number(total) / 2) serving = id;
    }
    pes.get(serving)!.proc.kill('SIGKILL');
    await gw.waitForLine(/^failover: PE 0x[0-9a-f]{8} -> 0x[0-9a-f]{8} at block \d+, stall \d+ ms/, 30_000);
    await curl;
    await gw.waitForLine(/^transfer \d+ done: big\.bin, 30000000 bytes, failovers 1/, 30_000);
    const survivor = [...pes.entries()].find(([id]) => id !== serving)![1];

    const pe = await scrape(survivor.http);
    expect(pe.get('rserpool_tftp_transfers_resumed_total')).toBe(1);
    expect(pe.get('rserpool_tftp_cookies_accepted_total')).toBe(1);
    expect(pe.get('rserpool_tftp_transfers_started_total{kind="read"}')).toBe(1);
    expect(pe.get('rserpool_tftp_transfers_started_total{kind="write"}')).toBe(0);
    expect(pe.get('rserpool_tftp_transfers_finished_total{kind="read",outcome="done"}')).toBe(1);
    expect(pe.get('rserpool_tftp_transfers_active')).toBe(0);
    // It served the second half: more than nothing, less than all.
    expect(pe.get('rserpool_tftp_sent_bytes_total')).toBeGreaterThan(0);
    expect(pe.get('rserpool_tftp_sent_bytes_total')).toBeLessThan(SIZE);
    expect(pe.get('rserpool_tftp_received_bytes_total')).toBe(0);
    expect(pe.get('rserpool_tftp_cookies_issued_total')).toBeGreaterThanOrEqual(1);
    expect(pe.get('process_resident_memory_bytes')).toBeGreaterThan(0);

    const g = await scrape(`${gwHttp}`);
    expect(g.get('rserpool_tftp_gateway_failovers_total{resumed="true"}')).toBe(1);
    expect(g.get('rserpool_tftp_gateway_failovers_total{resumed="false"}')).toBe(0);
    expect(g.get('rserpool_tftp_gateway_stall_seconds_count')).toBe(1);
    expect(g.get('rserpool_tftp_gateway_stall_seconds_sum')).toBeGreaterThan(0);
    expect(g.get('rserpool_tftp_gateway_stall_seconds_sum')).toBeLessThan(16);
    expect(g.get('rserpool_tftp_gateway_transfers_started_total')).toBe(1);
    expect(g.get('rserpool_tftp_gateway_transfers_finished_total{outcome="ok"}')).toBe(1);
    expect(g.get('rserpool_tftp_gateway_transfers_finished_total{outcome="failed"}')).toBe(0);
    expect(g.get('rserpool_tftp_gateway_sent_bytes_total')).toBe(SIZE);
    expect(g.get('rserpool_tftp_gateway_transfers_active')).toBe(0);

    // The killed PE answers no keep-alive: removed by the registrar within a few periods.
    await registrar.waitForLine(new RegExp(`^pe-removed ${serving} files keep-alive-timeout$`), 15_000);
    const r = await scrape(`${regHttp}/metrics`);
    expect(r.get('rserpool_keep_alive_timeouts_total')).toBe(1);
    expect(r.get('rserpool_pool_element_removals_total{reason="keep-alive-timeout"}')).toBe(1);
    expect(r.get('rserpool_registrations_total{kind="new"}')).toBe(2);
    expect(r.get('rserpool_pool_elements')).toBe(1);
  });
});
