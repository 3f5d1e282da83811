/** A registrar, PEs and a PU over sctp+udp:// (and sctp:// as root), real sockets on 127.0.0.1, the system clock. */
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { describeSctp } from '../support/raw-sctp.js';
import { PolicyType } from '../../protocols/parameters/types.js';
import { createRegistrar } from '../../lib/registrar/index.js';
import { createPoolElement } from '../../lib/pool-element/index.js';
import { createPoolUser } from '../../lib/pool-user/index.js';
import { createTransports, type TransportsInit } from '../../lib/transport/index.js';
import { Packet } from '../../lib/transport/sctp-package.js';
import { withDeadline } from '../transport/util.js';

const schemes = ['sctp+udp', 'sctp'] as const;

const userTransport = (port: number) => ({ protocol: 'udp' as const, port, addresses: ['0.0.0.0'], transportUse: 0 as const });

for (const scheme of schemes) {
  const transports = (): ReturnType<typeof createTransports> => createTransports({ tcp: false, [scheme]: {} } as TransportsInit);

  describeSctp(scheme, `registrar over ${scheme}://`, () => {
    it('registrar + 2 PEs + PU: register, resolve, deregister end to end', async () => {
      const reg = createRegistrar({ asap: [`${scheme}://127.0.0.1:0`], announce: false }, { transports: transports() });
      await reg.start();
      const url = reg.addresses[0]!.href;
      expect(url.startsWith(`${scheme}://127.0.0.1:`)).toBe(true);
      try {
        const pes = [1, 2].map((i) =>
          createPoolElement(
            { handle: 'sctp-echo', policy: { type: PolicyType.RoundRobin }, userTransport: userTransport(7000 + i), registrars: [url], identifier: i },
            { transports: transports() },
          ),
        );
        await Promise.all(pes.map((p) => p.start()));
        const pu = createPoolUser({ registrars: [url], cacheTtlMs: 0 }, { transports: transports() });
        const found = await pu.resolve('sctp-echo');
        expect(found.map((p) => p.identifier).sort()).toEqual([1, 2]);
        // 0.0.0.0 was replaced by the address the registrar saw the PE at.
        expect(found[0]!.userTransport.addresses).toEqual(['127.0.0.1']);
        const removed = withDeadline(
          new Promise<[{ identifier: number }, string]>((resolve) => reg.handlespace.events.once('removed', (e, why) => resolve([e, why]))),
          5_000,
          'deregistration',
        );
        await pes[0]!.stop();
        const [entry, reason] = await removed;
        expect([entry.identifier, reason]).toEqual([1, 'deregistered']);
        expect((await pu.resolve('sctp-echo')).map((p) => p.identifier)).toEqual([2]);
        await pes[1]!.stop();
        await pu.close();
        expect(reg.handlespace.size).toBe(0);
      } finally {
        await reg.stop();
      }
    });
  });
}

describe('registrar over sctp+udp://, under hostile datagrams', () => {
  it('datagrams that are no SCTP, or forged SCTP, leave registrations and clients alone', async () => {
    const transports = (): ReturnType<typeof createTransports> => createTransports({ tcp: false, 'sctp+udp': {} });
    const reg = createRegistrar({ asap: ['sctp+udp://127.0.0.1:0'], announce: false }, { transports: transports() });
    await reg.start();
    const { href: url, port } = reg.addresses[0]!;
    const pe = createPoolElement(
      { handle: 'sctp-keep', policy: { type: PolicyType.RoundRobin }, userTransport: userTransport(7100), registrars: [url], identifier: 9 },
      { transports: transports() },
    );
    const junk = createSocket('udp4');
    try {
      await pe.start();
      await new Promise<void>((resolve) => junk.bind(0, '127.0.0.1', resolve));
      const send = (b: Buffer): void => void junk.send(b, port, '127.0.0.1');
      send(randomBytes(3));
      send(randomBytes(200)); // checksum does not match
      for (const chunks of [
        [Buffer.from([10, 0, 0, 84, ...randomBytes(80)])],
        [Buffer.from([0, 3, 0, 24, ...randomBytes(20)])],
        [Buffer.from([1, 0, 0, 20, ...Buffer.alloc(16)])],
      ]) {
        send(new Packet({ src_port: 4000, dst_port: port, v_tag: 42 }, chunks).toBuffer()); // forged cookie, OOTB DATA, INIT with tag 0
      }
      const pu = createPoolUser({ registrars: [url] }, { transports: transports() });
      expect((await pu.resolve('sctp-keep')).map((e) => e.identifier)).toEqual([9]);
      expect(pe.registered).toBe(true);
      await pu.close();
    } finally {
      junk.close();
      await pe.stop();
      await reg.stop();
    }
  });
});
