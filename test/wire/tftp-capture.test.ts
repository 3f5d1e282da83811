/**
 * A TFTP failover run on the wire: registrars on 127.0.0.2-3 (ASAP + ENRP
 * over TCP), PEs on 127.0.0.5-7, the client on 127.0.0.8. The TCP side goes
 * through the wire check; the ASAP messages on the TFTP path
 * (cookies and the cookie echo) are cut out of the UDP datagrams and checked
 * too.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startCli, type CliProcess } from '../cli/run.js';
import { createTftpClient } from '../../lib/tftp/client/index.js';
import { wirecheck, wirecheckPcap } from '../support/wirecheck.js';
import { capturePort, startCapture, type Capture } from './capture.js';

const procs: CliProcess[] = [];
let capture: Capture | undefined;
let dir: string | undefined;
afterEach(async () => {
  for (const p of procs.splice(0)) {
    p.kill('SIGKILL');
    await p.exited;
  }
  await capture?.stop();
  capture?.remove();
  capture = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function start(args: string[]): CliProcess {
  const p = startCli(args);
  procs.push(p);
  return p;
}

const CLIENT_HOST = '127.0.0.8';

describe('a TFTP failover on the wire', () => {
  it('its ASAP/ENRP traffic, and the cookies on the TFTP path, pass the wire check', async () => {
    dir = mkdtempSync(join(tmpdir(), 'rserpool-tftp-capture-'));
    const size = 6 * 2 ** 20;
    writeFileSync(join(dir, 'f.bin'), randomBytes(size));
    const asapPort = capturePort(26000);
    const enrpPort = asapPort + 1000;
    capture = await startCapture(`tcp port ${asapPort} or tcp port ${enrpPort} or (udp and host ${CLIENT_HOST})`);

    const hosts = [2, 3];
    const registrars = hosts.map((h) =>
      start([
        'registrar',
        '--id',
        String(h),
        '--asap',
        `tcp://127.0.0.${h}:${asapPort}`,
        '--enrp',
        `tcp://127.0.0.${h}:${enrpPort}`,
        ...hosts.filter((o) => o !== h).map((o) => `--peer=tcp://127.0.0.${o}:${enrpPort}`),
        '--http',
        'off',
        '--announce',
        'off',
        '--enrp-multicast',
        'off',
        '--print-events',
        '--keep-alive-interval',
        '300ms',
        '--keep-alive-timeout',
        '300ms',
        '--peer-heartbeat',
        '200ms',
        '--max-last-heard',
        '600ms',
        '--max-no-response',
        '400ms',
        '--takeover-expiry',
        '400ms',
        '--mentor-discovery',
        '1s',
      ]),
    );
    for (const r of registrars) await r.waitForLine(/^synchronised$/);
    const registrarUrls = hosts.map((h) => `tcp://127.0.0.${h}:${asapPort}`);
    const pes = await Promise.all(
      [5, 6, 7].map(async (h) => {
        const p = start([
          'tftp',
          'serve',
          '--root',
          dir!,
          '--handle',
          'files',
          '--host',
          `127.0.0.${h}`,
          '--port',
          '0',
          '--secret',
          'capture-test-pool-secret',
          ...registrarUrls.flatMap((u) => ['--registrar', u]),
        ]);
        const m = await p.waitForLine(/ as PE 0x([0-9a-f]{8}) under files$/);
        return { proc: p, identifier: parseInt(m[1]!, 16) };
      }),
    );

    const client = createTftpClient({ registrars: registrarUrls, localAddress: CLIENT_HOST, blksize: 1468, windowsize: 8, cookieInterval: 64 });
    let killed: number | undefined;
    try {
      const r = await client.get('files', '/f.bin', join(dir, 'out.bin'), {
        progressIntervalMs: 10,
        onProgress: (p) => {
          if (killed === undefined && p.bytes >= size / 2 && p.pe?.identifier !== undefined) {
            killed = p.pe.identifier;
            pes.find((x) => x.identifier === killed)!.proc.kill('SIGKILL');
          }
        },
      });
      expect(r.bytes).toBe(size);
      expect(r.failovers).toBeGreaterThanOrEqual(1);
    } finally {
      await client.close();
    }
    expect(killed).toBeDefined();
    // the registrars notice the dead PE (keep-alive) and say so by ENRP
    await Promise.any(registrars.map((r) => r.waitForLine(new RegExp(`^pe-removed 0x${killed!.toString(16).padStart(8, '0')} `), 10_000)));

    await capture.flush();
    await capture.stop();

    const tcp = await wirecheckPcap(capture.file, { asapPorts: [asapPort], enrpPorts: [enrpPort] });
    expect([...tcp.types], tcp.text()).toEqual(
      expect.arrayContaining(['ASAP_REGISTRATION', 'ASAP_HANDLE_RESOLUTION', 'ASAP_ENDPOINT_UNREACHABLE', 'ENRP_HANDLE_UPDATE']),
    );
    expect(tcp.failed, tcp.text()).toEqual([]);

    // UDP payloads between the client and the PEs: TFTP starts with a zero byte, ASAP does not
    const count = (filter: string): number => {
      const r = spawnSync('tshark', ['-n', '-r', capture!.file, '-Y', filter], { encoding: 'utf8', maxBuffer: 1 << 28 });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout.split('\n').filter((l) => l.trim()).length;
    };
    const path = `udp && ip.addr == ${CLIENT_HOST}`;
    expect(count(`${path} && udp.payload[0] == 0`)).toBeGreaterThan(1000);
    const fields = spawnSync('tshark', ['-n', '-r', capture.file, '-Y', `${path} && udp.payload[0] != 0`, '-T', 'fields', '-e', 'udp.payload'], {
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    });
    expect(fields.status, fields.stderr).toBe(0);
    const asap = fields.stdout
      .split('\n')
      .map((l) => l.trim().replace(/:/g, ''))
      .filter((l) => l.length > 0);
    expect(asap.length).toBeGreaterThan(2);
    const udp = await wirecheck(asap.map((h) => ({ proto: 'asap', bytes: Buffer.from(h, 'hex') })));
    expect([...udp.types], udp.text()).toEqual(expect.arrayContaining(['ASAP_COOKIE', 'ASAP_COOKIE_ECHO']));
    expect(udp.failed, udp.text()).toEqual([]);
    // About 42 s on a loaded machine: registrars, PEs, a failover and the wire check.
  }, 180_000);
});
