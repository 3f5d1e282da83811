import { connect as netConnect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RSerPoolError } from '../../lib/errors.js';
import { createTlsTransport, type TlsTransportInit } from '../../lib/transport/tls.js';
import type { Connection, Listener, MessageTransport, TransportUrl } from '../../lib/transport/types.js';
import { generateTestCerts, hasOpenssl, type TestCerts } from './certs.js';
import { runTransportCompliance, type RawPeer } from './compliance.js';
import { seqOf, testMessage, waitFor, withDeadline } from './util.js';

let certs: TestCerts;
beforeAll(() => {
  // The TLS tests need openssl to make their certificates; without it they fail, never pass silently.
  if (!hasOpenssl()) throw new Error('openssl not found: the TLS tests need it to generate certificates (apt-get install openssl)');
  certs = generateTestCerts();
});
afterAll(() => certs?.remove());

const PSK = { identity: 'pe-1', key: Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex') };

function rawTlsPeer(url: TransportUrl, extra: ConnectionOptions): Promise<RawPeer> {
  const socket = tlsConnect({ host: url.host, port: url.port, ...extra });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return once(socket, 'secureConnect').then(() => ({
    write: (b: Uint8Array) => socket.write(b),
    closed,
    destroy: () => socket.destroy(),
  }));
}

describe('tls with certificates', () => {
  runTransportCompliance('tls (certificates)', { perMessagePpid: false, rawConnect: true }, () => ({
    transport: (init, components) => createTlsTransport({ ca: certs.ca.cert, cert: certs.server.cert, key: certs.server.key, ...init }, components),
    listenUrl: 'tls://127.0.0.1:0',
    perMessagePpid: false,
    resetVisible: false,
    rawConnect: (url) => rawTlsPeer(url, { ca: certs.ca.cert }),
  }));
});

describe('tls with a pre-shared key', () => {
  runTransportCompliance('tls (psk)', { perMessagePpid: false, rawConnect: true }, () => ({
    transport: (init, components) => createTlsTransport({ psk: PSK, ...init }, components),
    listenUrl: 'tls://127.0.0.1:0',
    perMessagePpid: false,
    resetVisible: false,
    rawConnect: (url) => rawTlsPeer(url, { pskCallback: () => ({ psk: PSK.key, identity: PSK.identity }), checkServerIdentity: () => undefined }),
  }));
});

/** The typed error a connect ends in: its rejection, or (TLS 1.3 verifies client certs after the client's handshake) the close that follows. */
async function connectOutcome(t: MessageTransport, url: TransportUrl): Promise<string | undefined> {
  let conn: Connection;
  try {
    conn = await t.connect(url);
  } catch (err) {
    return err instanceof RSerPoolError ? err.code : String(err);
  }
  const err = await withDeadline(conn.closed, 5_000, 'server to drop the connection');
  return err?.code ?? 'closed without an error';
}

describe('tls transport', () => {
  async function serve(init: TlsTransportInit): Promise<{ listener: Listener; accepted: Connection[] }> {
    const listener = await createTlsTransport(init).listen('tls://127.0.0.1:0');
    const accepted: Connection[] = [];
    listener.on('connection', (c) => {
      accepted.push(c);
      c.on('message', (m) => c.send(m));
    });
    return { listener, accepted };
  }

  async function echoes(conn: Connection): Promise<void> {
    const got = waitFor(conn, 'message');
    conn.send(testMessage(64, 42));
    expect(seqOf((await got)[0])).toBe(42);
  }

  it('disconnects a plain TCP client and reports an auth error', async () => {
    const { listener, accepted } = await serve({ cert: certs.server.cert, key: certs.server.key });
    const inbound = waitFor(listener, 'inboundError');
    const socket = netConnect({ host: '127.0.0.1', port: listener.address.port });
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await once(socket, 'connect');
    socket.write(testMessage(16, 1));
    await withDeadline(closed, 5_000, 'plain client disconnected');
    expect((await inbound)[0].code).toBe('RSP_ERR_TLS_AUTH');
    expect(accepted).toHaveLength(0);
    await listener.close();
  });

  it('refuses a server certificate from an unknown issuer', async () => {
    const { listener } = await serve({ cert: certs.untrusted.cert, key: certs.untrusted.key });
    const client = createTlsTransport({ ca: certs.ca.cert });
    await expect(client.connect(listener.address)).rejects.toMatchObject({ code: 'RSP_ERR_TLS_AUTH' });
    await listener.close();
  });

  it('accepts a client certificate the CA vouches for when one is required', async () => {
    const { listener, accepted } = await serve({ ca: certs.ca.cert, cert: certs.server.cert, key: certs.server.key, requireClientCert: true });
    const conn = await createTlsTransport({ ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key }).connect(listener.address);
    await echoes(conn);
    expect(accepted).toHaveLength(1);
    await conn.close();
    await listener.close();
  });

  it('refuses a client without a certificate, or with an untrusted one, when one is required', async () => {
    const { listener, accepted } = await serve({ ca: certs.ca.cert, cert: certs.server.cert, key: certs.server.key, requireClientCert: true });
    // A refused client may also reset the socket afterwards; look for the auth refusal itself.
    const authRefusal = { filter: (e: RSerPoolError) => e.code === 'RSP_ERR_TLS_AUTH' };
    const inbound = waitFor(listener, 'inboundError', authRefusal);
    // With TLS 1.3 the client learns of the refusal only after its handshake; the alert may lose the race with the close.
    const refused = ['RSP_ERR_TLS_AUTH', 'RSP_ERR_CONNECTION_RESET', 'closed without an error'];
    expect(refused).toContain(await connectOutcome(createTlsTransport({ ca: certs.ca.cert }), listener.address));
    expect((await inbound)[0].code).toBe('RSP_ERR_TLS_AUTH');
    const inbound2 = waitFor(listener, 'inboundError', authRefusal);
    const untrusted = createTlsTransport({ ca: certs.ca.cert, cert: certs.untrusted.cert, key: certs.untrusted.key });
    expect(refused).toContain(await connectOutcome(untrusted, listener.address));
    expect((await inbound2)[0].code).toBe('RSP_ERR_TLS_AUTH');
    expect(accepted).toHaveLength(0);
    await listener.close();
  });

  it('refuses a wrong pre-shared key and an unknown identity, on both sides', async () => {
    const { listener, accepted } = await serve({ psk: PSK });
    const inbound = waitFor(listener, 'inboundError');
    const wrongKey = createTlsTransport({ psk: { identity: PSK.identity, key: Buffer.alloc(16, 7) } });
    await expect(wrongKey.connect(listener.address)).rejects.toMatchObject({ code: 'RSP_ERR_TLS_AUTH' });
    expect((await inbound)[0].code).toBe('RSP_ERR_TLS_AUTH');
    const stranger = createTlsTransport({ psk: { identity: 'someone-else', key: PSK.key } });
    await expect(stranger.connect(listener.address)).rejects.toMatchObject({ code: 'RSP_ERR_TLS_AUTH' });
    expect(accepted).toHaveLength(0);
    await listener.close();
  });

  it("speaks RFC 5355's TLS_PSK_WITH_AES_128_CBC_SHA over TLS 1.2, and PSK over TLS 1.3", async () => {
    const rfc5355: TlsTransportInit = { psk: PSK, maxVersion: 'TLSv1.2', ciphers: 'PSK-AES128-CBC-SHA' };
    const a = await serve(rfc5355);
    await echoes(await createTlsTransport(rfc5355).connect(a.listener.address));
    const tls13: TlsTransportInit = { psk: PSK, minVersion: 'TLSv1.3' };
    const b = await serve(tls13);
    await echoes(await createTlsTransport(tls13).connect(b.listener.address));
    for (const c of [...a.accepted, ...b.accepted]) c.abort();
    await a.listener.close();
    await b.listener.close();
  });

  it('times out a connect whose server never answers the handshake', async () => {
    const silent = createNetServer(() => {});
    const sockets: import('node:net').Socket[] = [];
    silent.on('connection', (s) => sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    const t = createTlsTransport({ ca: certs.ca.cert });
    await expect(t.connect(`tls://127.0.0.1:${port}`, { timeoutMs: 200 })).rejects.toMatchObject({ code: 'RSP_ERR_TIMEOUT' });
    for (const s of sockets) s.destroy();
    silent.close();
  });

  it('hands the certificate identities proved in the handshake to both sides', async () => {
    const { listener, accepted } = await serve({ ca: certs.ca.cert, cert: certs.server.cert, key: certs.server.key, requireClientCert: true });
    const arrived = waitFor(listener, 'connection');
    const conn = await createTlsTransport({ ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key }).connect(listener.address);
    await arrived;
    expect(accepted[0]!.peerIdentity).toMatchObject({ kind: 'certificate', name: 'pe-1', subject: 'CN=pe-1' });
    expect(accepted[0]!.peerIdentity).toHaveProperty('fingerprint256', expect.stringMatching(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/));
    expect(conn.peerIdentity).toMatchObject({
      kind: 'certificate',
      name: '127.0.0.1',
      altNames: expect.arrayContaining(['IP Address:127.0.0.1', 'DNS:localhost']),
    });
    await conn.close();
    await listener.close();
  });

  it('proves no identity for a client that sent no certificate', async () => {
    const { listener, accepted } = await serve({ cert: certs.server.cert, key: certs.server.key });
    const arrived = waitFor(listener, 'connection');
    const conn = await createTlsTransport({ ca: certs.ca.cert }).connect(listener.address);
    await arrived;
    expect(accepted[0]!.peerIdentity).toBeUndefined();
    await conn.close();
    await listener.close();
  });

  it('admits every identity of a PSK table with its own key, and names it on the connection', async () => {
    const table = new Map([
      ['pe-a', Buffer.alloc(16, 1)],
      ['pe-b', Buffer.alloc(32, 2)],
    ]);
    const { listener, accepted } = await serve({ psk: { table } });
    for (const [identity, key] of table) {
      const arrived = waitFor(listener, 'connection');
      const conn = await createTlsTransport({ psk: { identity, key } }).connect(listener.address);
      const [server] = await arrived;
      expect(server.peerIdentity).toEqual({ kind: 'psk', name: identity });
      expect(conn.peerIdentity).toEqual({ kind: 'psk', name: identity });
      await echoes(conn);
      await conn.close();
    }
    // One identity with another's key is refused.
    const swapped = createTlsTransport({ psk: { identity: 'pe-a', key: Buffer.alloc(32, 2) } });
    await expect(swapped.connect(listener.address)).rejects.toMatchObject({ code: 'RSP_ERR_TLS_AUTH' });
    expect(accepted).toHaveLength(2);
    await listener.close();
  });

  it('refuses a client without the PSK on a listener that also has a certificate', async () => {
    const { listener, accepted } = await serve({ cert: certs.server.cert, key: certs.server.key, psk: PSK });
    const refusal = waitFor(listener, 'inboundError');
    const outcome = await connectOutcome(createTlsTransport({ ca: certs.ca.cert }), listener.address);
    expect(['RSP_ERR_TLS_AUTH', 'RSP_ERR_CONNECTION_RESET', 'closed without an error']).toContain(outcome);
    expect((await refusal)[0]).toMatchObject({ code: 'RSP_ERR_TLS_AUTH', message: expect.stringContaining('no pre-shared key') });
    expect(accepted).toHaveLength(0);
    // The PSK client still gets in, certificate or not.
    const arrived = waitFor(listener, 'connection');
    const conn = await createTlsTransport({ ca: certs.ca.cert, psk: PSK }).connect(listener.address);
    expect((await arrived)[0].peerIdentity).toEqual({ kind: 'psk', name: PSK.identity });
    await echoes(conn);
    await conn.close();
    await listener.close();
  });

  it('admits a verified client certificate instead of a PSK when client certificates are required', async () => {
    const init = { ca: certs.ca.cert, cert: certs.server.cert, key: certs.server.key, requireClientCert: true, psk: PSK };
    const { listener } = await serve(init);
    const arrived = waitFor(listener, 'connection');
    const conn = await createTlsTransport({ ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key }).connect(listener.address);
    expect((await arrived)[0].peerIdentity).toMatchObject({ kind: 'certificate', name: 'pe-1' });
    await conn.close();
    await listener.close();
  });

  it('refuses short or unpaired pre-shared keys at construction', () => {
    const bad = [
      { identity: 'x', key: Buffer.alloc(8) },
      { identity: 'x' },
      { key: Buffer.alloc(16) },
      { table: { x: Buffer.alloc(15) } },
      { identity: '', key: Buffer.alloc(16) },
      {},
    ];
    for (const psk of bad) expect(() => createTlsTransport({ psk })).toThrow(expect.objectContaining({ code: 'RSP_ERR_INVALID_OPTION' }));
  });

  it('needs cert and key, or a PSK, to listen', async () => {
    await expect(createTlsTransport({ ca: certs.ca.cert }).listen('tls://127.0.0.1:0')).rejects.toMatchObject({
      code: 'RSP_ERR_INVALID_OPTION',
    });
    expect(() => createTlsTransport({ cert: certs.server.cert })).toThrow(expect.objectContaining({ code: 'RSP_ERR_INVALID_OPTION' }));
  });
});
