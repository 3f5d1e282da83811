import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createTransports, PPID } from '../../lib/transport/index.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { encodeEnrpMessage } from '../../protocols/enrp/codec.js';
import { EnrpFlags, EnrpMessageType, HandleUpdateAction } from '../../protocols/enrp/types.js';
import { TransportUse, type PoolElementParameter } from '../../protocols/parameters/types.js';
import { RawClient, element, te } from '../registrar/helpers.js';
import { startCli } from '../cli/run.js';
import { withDeadline } from '../transport/util.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Runs a snippet that installs the safety net and then fails the way `fault` says. */
function crash(fault: string): Promise<{ code: number | null; stderr: string }> {
  const script = `import('./lib/cli/process.js').then((m) => { m.installSafetyNet('probe'); ${fault} });`;
  return withDeadline(
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stderr }));
    }),
    20_000,
    'the probe process',
  );
}

const NET = /uncaught exception|unhandled rejection/;

describe('CLI safety net', () => {
  it('an uncaught exception or unhandled rejection is one line with its code, and exit code 70', async () => {
    const thrown = await crash(`setImmediate(() => { throw Object.assign(new Error('boom\\nsecond line'), { code: 'RSP_ERR_PROBE' }); });`);
    expect(thrown.code).toBe(70);
    expect(thrown.stderr).toMatch(/^rserpool probe: uncaught exception \(RSP_ERR_PROBE\): boom second line at .+\n$/);
    const rejected = await crash(`void Promise.reject(Object.assign(new Error('late'), { code: 'ECONNRESET' }));`);
    expect(rejected.code).toBe(70);
    expect(rejected.stderr).toMatch(/^rserpool probe: unhandled rejection \(ECONNRESET\): late at .+\n$/);
  });

  it('none of the hostile inputs reaches it: a registrar with an ENRP peer takes them all and stops cleanly', async () => {
    const timers = ['--peer-heartbeat', '200ms', '--max-last-heard', '600ms', '--max-no-response', '400ms', '--mentor-discovery', '500ms'];
    const common = ['--announce', 'off', '--enrp-multicast', 'off', '--print-events', ...timers];
    const a = startCli(['registrar', '--id', '0xa2', '--asap', 'tcp://127.0.7.6:0', '--enrp', 'tcp://127.0.7.6:0', '--http', '127.0.7.6:0', ...common]);
    const [, asapUrl, enrpUrl, statusUrl] = (await a.waitForLine(/^registrar \S+ asap (\S+) enrp (\S+) status (\S+)/))!;
    const b = startCli([
      'registrar',
      '--id',
      '0xb2',
      '--asap',
      'tcp://127.0.7.7:0',
      '--enrp',
      'tcp://127.0.7.7:0',
      '--peer',
      enrpUrl!,
      '--http',
      'off',
      ...common,
    ]);
    try {
      await a.waitForLine(/^peer-up 0x000000b2$/);
      const transports = createTransports({});
      const c = await RawClient.connect(transports, asapUrl!);
      const huge: PoolElementParameter = {
        ...element(1),
        userTransport: {
          protocol: 'sctp',
          port: 7000,
          addresses: Array.from({ length: 8186 }, (_, i) => `10.0.${i >> 8}.${i & 0xff}`),
          transportUse: TransportUse.DataOnly,
        },
      };
      // ASAP: the 65.5 kB registration, garbage, a handle of 0 and of 2,000 bytes, a hostile handle.
      c.send({ type: AsapMessageType.Registration, handle: te('big'), element: huge });
      c.sendBytes(new Uint8Array([0x7f, 0, 0, 8, 1, 2, 3, 4]));
      c.send({ type: AsapMessageType.Registration, handle: new Uint8Array(0), element: element(2) });
      c.send({ type: AsapMessageType.Registration, handle: new Uint8Array(2000), element: element(3) });
      c.send({ type: AsapMessageType.Registration, handle: Buffer.from('\x1b]0;x\x07\n'), element: element(4) });
      c.send({ type: AsapMessageType.HandleResolution, handle: te('big'), items: 0xffffffff });
      for (let id = 1; id <= 4; id++) await c.next(AsapMessageType.RegistrationResponse, (m) => m.identifier === id, 10_000);
      await c.next(AsapMessageType.HandleResolutionResponse, () => true, 10_000);
      // ENRP: a stranger's presence, then a HANDLE_UPDATE with an oversized PE.
      const enrp = await transports.connect(enrpUrl!, { ppid: PPID.ENRP });
      enrp.send(
        encodeEnrpMessage({ type: EnrpMessageType.Presence, senderServerId: 0x99, receiverServerId: 0, checksum: 0, flags: EnrpFlags.ReplyRequired }),
        PPID.ENRP,
      );
      enrp.send(
        encodeEnrpMessage({
          type: EnrpMessageType.HandleUpdate,
          senderServerId: 0x99,
          receiverServerId: 0,
          action: HandleUpdateAction.AddOrUpdate,
          handle: te('x'),
          element: { ...huge, userTransport: { ...huge.userTransport, addresses: huge.userTransport.addresses.slice(0, 8000) }, homeRegistrarId: 0x99 },
        }),
        PPID.ENRP,
      );
      const enrpAnswered = new Promise<void>((resolve) => enrp.on('message', () => resolve()));
      await withDeadline(enrpAnswered, 10_000, 'an ENRP answer');
      // HTTP: not HTTP at all.
      const sock = connect(Number(new URL(statusUrl!).port), '127.0.7.6');
      sock.on('error', () => undefined);
      sock.end('\x00\xff\r\n\r\n');
      await withDeadline(new Promise((r) => sock.on('close', r)), 5_000, 'the status socket closed');
      expect((await fetch(statusUrl!)).status).toBe(200);
      enrp.abort();
      await c.conn.close();
      a.kill('SIGTERM');
      expect(await a.exited).toBe(0);
      expect(a.output()).not.toMatch(NET);
    } finally {
      for (const p of [a, b]) p.kill('SIGKILL');
      await Promise.all([a.exited, b.exited]);
    }
  });
});
