import { afterEach, describe, expect, it } from 'vitest';
import { startCli, type CliProcess } from '../cli/run.js';
import { wirecheckPcap } from '../support/wirecheck.js';
import { capturePort, startCapture, type Capture } from './capture.js';

const procs: CliProcess[] = [];
let capture: Capture | undefined;
afterEach(async () => {
  for (const p of procs.splice(0)) {
    p.kill('SIGKILL');
    await p.exited;
  }
  await capture?.stop();
  capture?.remove();
  capture = undefined;
});

function start(args: string[]): CliProcess {
  const p = startCli(args);
  procs.push(p);
  return p;
}

describe('ENRP on the wire', () => {
  it('a captured cluster run with a takeover passes the wire check', async () => {
    const asapPort = capturePort(24000);
    const enrpPort = asapPort + 1000;
    capture = await startCapture(`tcp port ${asapPort} or tcp port ${enrpPort}`);
    const hosts = [2, 3, 4];
    const enrp = (h: number): string => `tcp://127.0.0.${h}:${enrpPort}`;
    const nodes = hosts.map((h) =>
      start([
        'registrar', '--id', String(h), '--asap', `tcp://127.0.0.${h}:${asapPort}`, '--enrp', enrp(h),
        ...hosts.filter((o) => o !== h).flatMap((o) => ['--peer', enrp(o)]),
        '--http', 'off', '--announce', 'off', '--enrp-multicast', 'off', '--print-events',
        '--peer-heartbeat', '200ms', '--max-last-heard', '600ms', '--max-no-response', '400ms', '--takeover-expiry', '400ms', '--mentor-discovery', '1s',
      ]),
    );
    for (const n of nodes) await n.waitForLine(/^synchronised$/);
    // The PE knows only registrar 3, so it cannot re-register elsewhere: its PEs must be taken over.
    const pe = start(['register', '--handle', 'files', '--transport', 'udp://127.0.0.1:6969', '--identifier', '0x3001', '--registrar', `tcp://127.0.0.3:${asapPort}`]);
    await pe.waitForLine(/^registered /);
    nodes[1]!.kill('SIGKILL');
    await Promise.any([nodes[0]!, nodes[2]!].map((n) => n.waitForLine(/^takeover 0x00000003 1 PEs$/, 10_000)));
    await capture.flush();
    await capture.stop();
    const report = await wirecheckPcap(capture.file, { asapPorts: [asapPort], enrpPorts: [enrpPort] });
    expect([...report.types], report.text()).toEqual(expect.arrayContaining(['ENRP_PRESENCE', 'ENRP_HANDLE_TABLE_REQUEST', 'ENRP_HANDLE_TABLE_RESPONSE', 'ENRP_HANDLE_UPDATE', 'ENRP_INIT_TAKEOVER', 'ENRP_INIT_TAKEOVER_ACK', 'ENRP_TAKEOVER_SERVER',]));
    expect(report.failed, report.text()).toEqual([]);
  });
});
