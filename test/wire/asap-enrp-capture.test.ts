/**
 * ASAP and ENRP on the wire, one captured scenario run per transport:
 * registration, resolution, keep-alive, deregistration, ENRP sync and a
 * takeover. tcp:// carries ASAP and ENRP on two ports of our choosing (the
 * check is told which is which); sctp+udp:// listens on UDP port 9899,
 * RFC 6951's SCTP tunneling port, which Wireshark decodes as SCTP by itself;
 * sctp:// (as root) is plain IP protocol 132; SCTP messages are told apart by
 * their PPID. Each run uses its own 127.x.y.0/24 so the capture holds nothing else.
 */
import { afterEach, expect, it } from 'vitest';
import { describeSctp } from '../support/raw-sctp.js';
import { runCli, startCli, type CliProcess } from '../cli/run.js';
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

const TUNNELING_PORT = 9899;
const TCP_PORT = capturePort(23000);
const variants = [
  {
    scheme: 'tcp',
    asapPort: TCP_PORT,
    enrpPort: TCP_PORT + 1,
    filter: (net: string) => `tcp and net ${net}`,
    ports: { asapPorts: [TCP_PORT], enrpPorts: [TCP_PORT + 1] },
  },
  { scheme: 'sctp+udp', asapPort: TUNNELING_PORT, enrpPort: TUNNELING_PORT, filter: (net: string) => `udp port ${TUNNELING_PORT} and net ${net}`, ports: {} },
  { scheme: 'sctp', asapPort: 3863, enrpPort: 9901, filter: (net: string) => `sctp and net ${net}`, ports: {} },
];

for (const { scheme, asapPort, enrpPort, filter, ports } of variants) {
  describeSctp(scheme, `ASAP and ENRP over ${scheme}:// on the wire`, () => {
    it('a captured run (register, resolve, keep-alive, deregister, ENRP sync and takeover) passes the wire check', async () => {
      const prefix = `127.${100 + Math.floor(Math.random() * 100)}.${Math.floor(Math.random() * 256)}`;
      capture = await startCapture(filter(`${prefix}.0/24`));
      const hosts = [2, 3, 4];
      const asap = (h: number): string => `${scheme}://${prefix}.${10 + h}:${asapPort}`;
      const enrp = (h: number): string => `${scheme}://${prefix}.${20 + h}:${enrpPort}`;
      const nodes = hosts.map((h) =>
        start([
          'registrar',
          '--id',
          String(h),
          '--asap',
          asap(h),
          '--enrp',
          enrp(h),
          ...hosts.filter((o) => o !== h).flatMap((o) => ['--peer', enrp(o)]),
          '--http',
          'off',
          '--announce',
          'off',
          '--enrp-multicast',
          'off',
          '--print-events',
          '--keep-alive-interval',
          '200ms',
          '--keep-alive-timeout',
          '500ms',
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
      for (const n of nodes) await n.waitForLine(/^synchronised$/, 20_000);
      // One PE knows only registrar 3, so its registration must be taken over; the other deregisters from 2.
      const stays = start(['register', '--handle', 'files', '--transport', 'udp://127.0.0.1:6969', '--identifier', '0x3001', '--registrar', asap(3)]);
      const leaves = start(['register', '--handle', 'files', '--transport', 'udp://127.0.0.1:6970', '--identifier', '0x2001', '--registrar', asap(2)]);
      await stays.waitForLine(/^registered /, 20_000);
      await leaves.waitForLine(/^registered /, 20_000);
      const resolved = await runCli(['resolve', 'files', '--registrar', asap(4), '--items', '4']);
      expect(resolved.code, resolved.stderr).toBe(0);
      const missing = await runCli(['resolve', 'nothing-here', '--registrar', asap(4)]);
      expect(missing.code).toBe(1);
      leaves.kill('SIGTERM');
      await nodes[0]!.waitForLine(/^pe-deregistered 0x00002001 /, 10_000);
      nodes[1]!.kill('SIGKILL');
      await Promise.any([nodes[0]!, nodes[2]!].map((n) => n.waitForLine(/^takeover 0x00000003 1 PEs$/, 10_000)));
      await capture.flush();
      await capture.stop();

      const report = await wirecheckPcap(capture.file, ports);
      expect([...report.types], report.text()).toEqual(
        expect.arrayContaining([
          'ASAP_REGISTRATION',
          'ASAP_REGISTRATION_RESPONSE',
          'ASAP_HANDLE_RESOLUTION',
          'ASAP_HANDLE_RESOLUTION_RESPONSE',
          'ASAP_ENDPOINT_KEEP_ALIVE',
          'ASAP_ENDPOINT_KEEP_ALIVE_ACK',
          'ASAP_DEREGISTRATION',
          'ASAP_DEREGISTRATION_RESPONSE',
          'ENRP_PRESENCE',
          'ENRP_HANDLE_TABLE_REQUEST',
          'ENRP_HANDLE_TABLE_RESPONSE',
          'ENRP_HANDLE_UPDATE',
          'ENRP_INIT_TAKEOVER',
          'ENRP_INIT_TAKEOVER_ACK',
          'ENRP_TAKEOVER_SERVER',
        ]),
      );
      const carried = scheme === 'tcp' ? /^tcp stream / : / sctp /;
      expect(
        report.messages.every((m) => carried.test(m.label)),
        report.text(),
      ).toBe(true);
      expect(report.failed, report.text()).toEqual([]);
    });
  });
}
