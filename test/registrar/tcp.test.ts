/** Real sockets on 127.0.0.1 (port 0), the system clock; multicast on loopback only with TTL 1. */
import { connect as netConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PolicyType } from '../../protocols/parameters/types.js';
import { decodeAsapMessage } from '../../protocols/asap/codec.js';
import { AsapFlags, AsapMessageType, type AsapMessage } from '../../protocols/asap/types.js';
import { listenAnnounces } from '../../lib/announce/index.js';
import { createRegistrar, type Registrar } from '../../lib/registrar/index.js';
import { createPoolElement, NoRegistrarError } from '../../lib/pool-element/index.js';
import { createPoolUser } from '../../lib/pool-user/index.js';
import { createTransports } from '../../lib/transport/index.js';
import { ManualClock } from '../../lib/clock.js';
import { waitFor, withDeadline } from '../transport/util.js';
import { generateTestCerts, hasOpenssl, type TestCerts } from '../transport/certs.js';

const userTransport = (port: number) => ({ protocol: 'tcp' as const, port, addresses: ['0.0.0.0'], transportUse: 0 as const });

describe('registrar over tcp', () => {
  let reg: Registrar;
  let url: string;
  beforeAll(async () => {
    reg = createRegistrar({ asap: ['tcp://127.0.0.1:0'], announce: false });
    await reg.start();
    url = reg.addresses[0]!.href;
  });
  afterAll(async () => {
    await reg.stop();
  });

  it('registrar + 2 PEs + PU: register, resolve, deregister end to end', async () => {
    const pes = [1, 2].map((i) =>
      createPoolElement({
        handle: 'tcp-echo',
        policy: { type: PolicyType.RoundRobin },
        userTransport: userTransport(7000 + i),
        registrars: [url],
        identifier: i,
      }),
    );
    await Promise.all(pes.map((p) => p.start()));
    const pu = createPoolUser({ registrars: [url], cacheTtlMs: 0 });
    const found = await pu.resolve('tcp-echo');
    expect(found.map((p) => p.identifier).sort()).toEqual([1, 2]);
    // 0.0.0.0 was replaced by the address the registrar saw
    expect(found[0]!.userTransport.addresses).toEqual(['127.0.0.1']);
    await pes[0]!.stop();
    expect((await pu.resolve('tcp-echo')).map((p) => p.identifier)).toEqual([2]);
    await pes[1]!.stop();
    await pu.close();
  });

  it('framing garbage closes only that connection; other registrations and clients carry on', async () => {
    const p = createPoolElement({
      handle: 'tcp-keep',
      policy: { type: PolicyType.RoundRobin },
      userTransport: userTransport(7100),
      registrars: [url],
      identifier: 9,
    });
    await p.start();
    const port = reg.addresses[0]!.port;
    const closed = await withDeadline(
      new Promise<boolean>((resolve) => {
        const s = netConnect({ host: '127.0.0.1', port }, () => s.write(Buffer.from([0x01, 0x00, 0x00, 0x02, 0xff, 0xff, 0xff, 0xff])));
        s.on('error', () => {});
        s.on('close', () => resolve(true));
      }),
      5_000,
      'garbage connection closed',
    );
    expect(closed).toBe(true);
    const pu = createPoolUser({ registrars: [url] });
    expect((await pu.resolve('tcp-keep')).map((e) => e.identifier)).toEqual([9]);
    expect(p.registered).toBe(true);
    await pu.close();
    await p.stop();
  });
});

describe('registrar takeover over tcp', () => {
  it('takeover makes a foreign PE ours and reaches it at its ASAP transport with an H-bit keep-alive', async () => {
    const reg = createRegistrar({ asap: ['tcp://127.0.0.1:0'], announce: false });
    await reg.start();
    const tcp = createTransports();
    const peAsap = await tcp.listen('tcp://127.0.0.1:0');
    try {
      const got = new Promise<AsapMessage>((resolve) =>
        peAsap.once('connection', (conn) => conn.once('message', (bytes) => resolve(decodeAsapMessage(bytes)))),
      );
      const foreign = {
        identifier: 31,
        homeRegistrarId: 0x999,
        registrationLife: 60_000,
        userTransport: { protocol: 'tcp' as const, port: 7500, addresses: ['127.0.0.1'], transportUse: 0 as const },
        asapTransport: { protocol: 'tcp' as const, port: peAsap.address.port, addresses: ['127.0.0.1'], transportUse: 1 as const },
        policy: { type: PolicyType.RoundRobin },
      };
      expect(reg.applyForeign('svc', foreign, 0x999)).toBe(true);
      expect(await reg.takeover(0x999)).toBe(1);
      expect(reg.handlespace.get('svc', 31)?.homeRegistrarId).toBe(reg.id);
      const ka = await withDeadline(got, 5_000, 'H-bit keep-alive');
      expect(ka).toMatchObject({ type: AsapMessageType.EndpointKeepAlive, flags: AsapFlags.Home, serverId: reg.id, identifier: 31 });
    } finally {
      await peAsap.close();
      await reg.stop();
    }
  });
});

describe('registrar takeover of a stale copy', () => {
  it('a PE taken over with a copy about to expire stays listed until its keep-alive decides (chaos seed 504: the stale copy expired at the taker)', async () => {
    const clock = new ManualClock(0);
    const reg = createRegistrar(
      { asap: ['tcp://127.0.0.1:0'], announce: false, keepAliveIntervalMs: 1_000, keepAliveTimeoutMs: 1_000 },
      { clock, transports: createTransports({}, { clock }) },
    );
    await reg.start();
    const tcp = createTransports();
    const peAsap = await tcp.listen('tcp://127.0.0.1:0');
    const step = async (ms: number): Promise<void> => {
      for (let left = ms; left > 0; left -= 100) {
        clock.advance(Math.min(100, left));
        for (let k = 0; k < 3; k++) await new Promise<void>((r) => setImmediate(r));
      }
    };
    try {
      const got = new Promise<AsapMessage>((resolve) =>
        peAsap.once('connection', (conn) => conn.once('message', (bytes) => resolve(decodeAsapMessage(bytes)))),
      );
      const foreign = {
        identifier: 32,
        homeRegistrarId: 0x999,
        registrationLife: 10_000,
        userTransport: { protocol: 'tcp' as const, port: 7501, addresses: ['127.0.0.1'], transportUse: 0 as const },
        asapTransport: { protocol: 'tcp' as const, port: peAsap.address.port, addresses: ['127.0.0.1'], transportUse: 1 as const },
        policy: { type: PolicyType.RoundRobin },
      };
      expect(reg.applyForeign('svc', foreign, 0x999)).toBe(true);
      // Cut off from the old home since, we heard nothing of the PE for 9.9 s of its 10 s life.
      await step(9_900);
      const removed: string[] = [];
      reg.on('removed', (_e, reason) => removed.push(reason));
      expect(await reg.takeover(0x999)).toBe(1);
      await withDeadline(got, 5_000, 'H-bit keep-alive');
      // The PE has not answered yet: past the old expiry it is still listed, ours.
      await step(500);
      expect(reg.handlespace.get('svc', 32)?.homeRegistrarId).toBe(reg.id);
      expect(removed).toEqual([]);
      // Silent on, its keep-alive times out and it goes.
      await step(2_000);
      expect(reg.handlespace.get('svc', 32)).toBeUndefined();
      expect(removed).toEqual(['keep-alive-timeout']);
    } finally {
      await peAsap.close();
      await reg.stop();
    }
  });
});

describe('registrar discovery by server announce (loopback multicast, TTL 1)', () => {
  it('a PE with no registrar list finds the registrar by its announce', async () => {
    const listener = await listenAnnounces({ port: 0, interface: '127.0.0.1' });
    const reg = createRegistrar({ asap: ['tcp://127.0.0.1:0'], announce: { port: listener.port, interface: '127.0.0.1', ttl: 1, intervalMs: 100 } });
    await reg.start();
    try {
      const [a] = await waitFor(listener, 'announce', { filter: (x) => x.serverId === reg.id });
      expect(a.urls).toEqual([reg.addresses[0]!.href]);
      const pe = createPoolElement({ handle: 'found', policy: { type: PolicyType.RoundRobin }, userTransport: userTransport(7200), discovery: listener });
      await pe.start();
      expect(pe.registrar).toBe(reg.addresses[0]!.href);
      const pu = createPoolUser({ discovery: listener });
      expect(await pu.resolve('found')).toHaveLength(1);
      await pu.close();
      await pe.stop();
    } finally {
      await reg.stop();
      await listener.close();
    }
  });
});

describe('registrar over tls', () => {
  let certs: TestCerts;
  beforeAll(() => {
    if (!hasOpenssl()) throw new Error('openssl not found: the TLS tests need it to generate certificates');
    certs = generateTestCerts();
  });
  afterAll(() => certs?.remove());

  it('refuses a PE without a valid client certificate, accepts one with it', async () => {
    const reg = createRegistrar(
      { asap: ['tls://127.0.0.1:0'], announce: false },
      { transports: createTransports({ tcp: false, tls: { ca: certs.ca.cert, cert: certs.server.cert, key: certs.server.key, requireClientCert: true } }) },
    );
    await reg.start();
    const url = reg.addresses[0]!.href;
    try {
      const bad = createPoolElement(
        {
          handle: 'tls',
          policy: { type: PolicyType.RoundRobin },
          userTransport: userTransport(7300),
          registrars: [url],
          startTimeoutMs: 1_500,
          huntBackoffMs: { initial: 100 },
        },
        { transports: createTransports({ tcp: false, tls: { ca: certs.ca.cert, cert: certs.untrusted.cert, key: certs.untrusted.key } }) },
      );
      await expect(bad.start()).rejects.toBeInstanceOf(NoRegistrarError);
      const none = createPoolElement(
        {
          handle: 'tls',
          policy: { type: PolicyType.RoundRobin },
          userTransport: userTransport(7300),
          registrars: [url],
          startTimeoutMs: 1_500,
          huntBackoffMs: { initial: 100 },
        },
        { transports: createTransports({ tcp: false, tls: { ca: certs.ca.cert } }) },
      );
      await expect(none.start()).rejects.toBeInstanceOf(NoRegistrarError);
      expect(reg.handlespace.size).toBe(0);
      const good = createPoolElement(
        { handle: 'tls', policy: { type: PolicyType.RoundRobin }, userTransport: userTransport(7300), registrars: [url] },
        { transports: createTransports({ tcp: false, tls: { ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key } }) },
      );
      await good.start();
      expect(reg.handlespace.size).toBe(1);
      await good.stop();
    } finally {
      await reg.stop();
    }
  });

  it('refuses a PE with the wrong PSK', async () => {
    const psk = { identity: 'pe', key: new Uint8Array(32).fill(7) };
    const reg = createRegistrar({ asap: ['tls://127.0.0.1:0'], announce: false }, { transports: createTransports({ tcp: false, tls: { psk } }) });
    await reg.start();
    const url = reg.addresses[0]!.href;
    try {
      const bad = createPoolElement(
        {
          handle: 'psk',
          policy: { type: PolicyType.RoundRobin },
          userTransport: userTransport(7400),
          registrars: [url],
          startTimeoutMs: 1_500,
          huntBackoffMs: { initial: 100 },
        },
        { transports: createTransports({ tcp: false, tls: { psk: { identity: 'pe', key: new Uint8Array(32).fill(8) } } }) },
      );
      await expect(bad.start()).rejects.toBeInstanceOf(NoRegistrarError);
      expect(reg.handlespace.size).toBe(0);
      const good = createPoolElement(
        { handle: 'psk', policy: { type: PolicyType.RoundRobin }, userTransport: userTransport(7400), registrars: [url] },
        { transports: createTransports({ tcp: false, tls: { psk } }) },
      );
      await good.start();
      expect(reg.handlespace.size).toBe(1);
      await good.stop();
    } finally {
      await reg.stop();
    }
  });
});
