import { afterEach, describe, expect, it } from 'vitest';
import { createTransports } from '../../lib/transport/index.js';
import { AsapFlags, AsapMessageType } from '../../protocols/asap/types.js';
import { encodeAsapMessage } from '../../protocols/asap/codec.js';
import { ErrorCause, PolicyType, TransportUse, type PoolElementParameter } from '../../protocols/parameters/types.js';
import { RawClient, element, te } from '../registrar/helpers.js';
import { startCli, type CliProcess } from '../cli/run.js';

const procs: CliProcess[] = [];
afterEach(async () => {
  for (const p of procs.splice(0)) {
    p.kill('SIGKILL');
    await p.exited;
  }
});

const TIMERS = [
  '--peer-heartbeat',
  '200ms',
  '--max-last-heard',
  '600ms',
  '--max-no-response',
  '400ms',
  '--takeover-expiry',
  '400ms',
  '--mentor-discovery',
  '500ms',
];

function start(args: string[]): CliProcess {
  const p = startCli(args);
  procs.push(p);
  return p;
}

/** A PE whose SCTP user transport lists `n` IPv4 addresses (8 bytes each on the wire). */
function hugePe(identifier: number, n: number): PoolElementParameter {
  const addresses = Array.from({ length: n }, (_, i) => `10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}`);
  return {
    identifier,
    homeRegistrarId: 0,
    registrationLife: 30_000,
    userTransport: { protocol: 'sctp', port: 7000, addresses, transportUse: TransportUse.DataOnly },
    policy: { type: PolicyType.RoundRobin },
  };
}

describe('an oversized ASAP registration at a registrar process with an ENRP peer', () => {
  it('is refused with Invalid Values; the registrar stays up, keeps its peer and serves the next registration', async () => {
    const a = start([
      'registrar',
      '--id',
      '0xa1',
      '--asap',
      'tcp://127.0.7.1:0',
      '--enrp',
      'tcp://127.0.7.1:0',
      '--http',
      'off',
      '--announce',
      'off',
      '--enrp-multicast',
      'off',
      '--print-events',
      ...TIMERS,
    ]);
    const [, asapUrl, enrpUrl] = (await a.waitForLine(/^registrar \S+ asap (\S+) enrp (\S+)/))!;
    const b = start([
      'registrar',
      '--id',
      '0xb1',
      '--asap',
      'tcp://127.0.7.2:0',
      '--enrp',
      'tcp://127.0.7.2:0',
      '--peer',
      enrpUrl!,
      '--http',
      'off',
      '--announce',
      'off',
      '--enrp-multicast',
      'off',
      '--print-events',
      ...TIMERS,
    ]);
    // A registrar answers resolutions once synchronised (for a, after --mentor-discovery: it has no peer to learn from).
    await Promise.all([a.waitForLine(/^peer-up 0x000000b1$/), b.waitForLine(/^peer-up 0x000000a1$/), a.waitForLine(/^synchronised$/)]);

    // 44 + 8 x 8186 = 65,532 bytes: fits an ASAP message, the HANDLE_UPDATE it derives (12 bytes more) does not.
    const big = { type: AsapMessageType.Registration, handle: te('big'), element: hugePe(0x51, 8186) } as const;
    expect(encodeAsapMessage(big).length).toBe(65_532);
    const transports = createTransports({});
    const client = await RawClient.connect(transports, asapUrl!);
    let exited = false;
    void a.exited.then(() => (exited = true));
    client.send(big);
    const refused = await Promise.race([
      client.next(AsapMessageType.RegistrationResponse, (m) => m.identifier === 0x51, 10_000),
      a.exited.then((code) => Promise.reject(new Error(`registrar exited (${code}) on the oversized registration\n${a.output()}`))),
    ]);
    expect(refused.flags! & AsapFlags.Reject).toBeTruthy();
    expect(refused.error?.[0]?.code).toBe(ErrorCause.InvalidValues);

    // Still serving, still peered: a normal PE registers and resolves.
    client.send({ type: AsapMessageType.Registration, handle: te('files'), element: element(0x52) });
    const ok = await client.next(AsapMessageType.RegistrationResponse, (m) => m.identifier === 0x52, 10_000);
    expect(ok.flags ?? 0).toBe(0);
    client.send({ type: AsapMessageType.HandleResolution, handle: te('files') });
    const res = await client.next(AsapMessageType.HandleResolutionResponse, () => true, 10_000);
    expect(res.elements.map((e) => e.identifier)).toEqual([0x52]);
    expect(exited).toBe(false);
    expect(a.output()).not.toMatch(/peer-down|uncaught|unhandled/i);
    await client.conn.close();
  });
});
