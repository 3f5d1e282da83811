import { isIP } from 'node:net';
import {
  DEFAULT_CIPHERS,
  checkServerIdentity,
  connect as tlsConnect,
  createServer,
  type ConnectionOptions,
  type SecureContextOptions,
  type SecureVersion,
  type TlsOptions,
  type TLSSocket,
} from 'node:tls';
import { systemClock } from '../clock.js';
import { silentLogger } from '../logger.js';
import { InvalidOptionError } from '../errors.js';
import { TlsAuthError } from './errors.js';
import { cancellable } from './internal.js';
import { classifySocketError, endpointOf, listenServer, wrapSocket, type StreamConnectionInit } from './stream.js';
import { streamSettings, urlFor, type StreamSettings } from './tcp.js';
import type {
  Connection,
  ConnectOptions,
  Listener,
  ListenOptions,
  MessageTransport,
  PeerIdentity,
  TransportComponents,
  TransportInit,
  TransportUrl,
} from './types.js';

type Pem = string | Buffer | (string | Buffer)[];

/**
 * TLS pre-shared keys (RFC 5355 makes TLS-PSK mandatory to implement). A
 * listener with any of these admits only clients that proved a key (or,
 * with `requireClientCert`, a certificate the CA vouches for).
 */
export interface TlsPsk {
  /** Identity this side presents when connecting; a listener also accepts it with `key`. */
  identity?: string;
  key?: Uint8Array;
  /** Listening side: every client identity with its key. */
  table?: ReadonlyMap<string, Uint8Array> | Readonly<Record<string, Uint8Array>>;
  /** Listening side: the key for a client's identity, looked up before `table`. */
  lookup?: (identity: string) => Uint8Array | undefined;
}

/** Shorter keys are guessable offline from one captured handshake. */
export const MIN_PSK_BYTES = 16;
/** OpenSSL's PSK_MAX_PSK_LEN, and RFC 4279's identity limit. */
const MAX_PSK_BYTES = 512;
const MAX_PSK_IDENTITY_BYTES = 128;

function checkPskKey(what: string, key: Uint8Array): void {
  if (key.length < MIN_PSK_BYTES || key.length > MAX_PSK_BYTES) {
    throw new InvalidOptionError(`tls: ${what}: a pre-shared key has ${MIN_PSK_BYTES} to ${MAX_PSK_BYTES} bytes, not ${key.length}`);
  }
}

function checkPsk(psk: TlsPsk): void {
  if ((psk.identity === undefined) !== (psk.key === undefined)) throw new InvalidOptionError('tls: psk identity and key go together');
  if (psk.identity !== undefined && (psk.identity.length === 0 || Buffer.byteLength(psk.identity) > MAX_PSK_IDENTITY_BYTES)) {
    throw new InvalidOptionError(`tls: a PSK identity has 1 to ${MAX_PSK_IDENTITY_BYTES} bytes`);
  }
  if (psk.key) checkPskKey(`key of '${psk.identity}'`, psk.key);
  for (const [id, key] of pskEntries(psk.table)) checkPskKey(`key of '${id}'`, key);
  if (psk.key === undefined && psk.table === undefined && psk.lookup === undefined) throw new InvalidOptionError('tls: psk needs a key, a table or a lookup');
}

function pskEntries(table: TlsPsk['table']): [string, Uint8Array][] {
  if (table === undefined) return [];
  return table instanceof Map ? [...(table as ReadonlyMap<string, Uint8Array>)] : Object.entries(table);
}

/** The listener's key for a client identity: lookup, then table, then the own pair. */
function pskResolver(psk: TlsPsk): (identity: string) => Uint8Array | undefined {
  const table = new Map(pskEntries(psk.table));
  if (psk.identity !== undefined && psk.key !== undefined && !table.has(psk.identity)) table.set(psk.identity, psk.key);
  return (identity) => psk.lookup?.(identity) ?? table.get(identity);
}

/** What a verified certificate says about its holder. */
function certificateIdentity(socket: TLSSocket): PeerIdentity | undefined {
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return undefined;
  const altNames = (cert.subjectaltname ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const cn = cert.subject?.CN;
  const firstAlt = altNames[0]?.replace(/^(DNS|IP Address|URI|email):/, '');
  const subject = Object.entries(cert.subject ?? {})
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`)
    .join(',');
  return Object.freeze({
    kind: 'certificate' as const,
    name: (Array.isArray(cn) ? cn[0] : cn) ?? firstAlt ?? subject,
    subject,
    altNames: Object.freeze(altNames),
    fingerprint256: cert.fingerprint256,
  });
}

export interface TlsTransportInit extends TransportInit {
  /** Trusted CA certificates (PEM); default Node's bundled roots. */
  ca?: Pem;
  /** This side's certificate chain and key (PEM): required to listen unless `psk` is set. */
  cert?: Pem;
  key?: Pem;
  /** Listening side: ask every client for a certificate and refuse those without one the CA vouches for. */
  requireClientCert?: boolean;
  psk?: TlsPsk;
  /** Default TLSv1.2 (RFC 5355 names TLS 1.0 suites; 1.2 is the oldest still worth offering). */
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
  /** OpenSSL cipher list; with `psk` the default adds the PSK suites (TLS 1.3 uses PSK with SHA-256 suites only). */
  ciphers?: string;
  /** How long an inbound handshake may take. Default 10,000 ms. */
  handshakeTimeoutMs?: number;
}

/** TLS 1.2 PSK suites, strongest first, ending with RFC 5355's TLS_PSK_WITH_AES_128_CBC_SHA. */
const PSK_CIPHERS = ['ECDHE-PSK-CHACHA20-POLY1305', 'PSK-AES256-GCM-SHA384', 'PSK-AES128-GCM-SHA256', 'ECDHE-PSK-AES128-CBC-SHA256', 'PSK-AES128-CBC-SHA'].join(
  ':',
);

/** ASAP/ENRP framed exactly as on tcp://, inside TLS (RFC 5355). */
class TlsTransport implements MessageTransport {
  readonly scheme = 'tls' as const;
  readonly #init: TlsTransportInit;
  readonly #settings: StreamSettings;
  readonly #components: Required<TransportComponents>;
  #seq = 0;

  constructor(init: TlsTransportInit, components: TransportComponents) {
    if ((init.cert === undefined) !== (init.key === undefined)) throw new InvalidOptionError('tls: give both cert and key, or neither');
    if (init.psk) checkPsk(init.psk);
    this.#init = init;
    this.#settings = streamSettings(init);
    this.#components = {
      clock: components.clock ?? systemClock,
      logger: (components.logger ?? silentLogger).child({ component: 'transport-tls' }),
    };
  }

  #connInit(ppid: number | undefined, peerIdentity: PeerIdentity | undefined, partialMessageTimeoutMs?: number): StreamConnectionInit {
    return {
      peerIdentity,
      scheme: 'tls',
      id: `tls-${++this.#seq}`,
      ppid: ppid ?? this.#settings.ppid,
      maxMessageSize: this.#settings.maxMessageSize,
      maxBufferedBytes: this.#settings.maxBufferedBytes,
      closeTimeoutMs: this.#settings.closeTimeoutMs,
      partialMessageTimeoutMs: partialMessageTimeoutMs ?? this.#settings.partialMessageTimeoutMs,
      clock: this.#components.clock,
      logger: this.#components.logger,
    };
  }

  #common(): SecureContextOptions {
    const i = this.#init;
    const o: SecureContextOptions = {
      minVersion: i.minVersion ?? 'TLSv1.2',
      ciphers: i.ciphers ?? (i.psk ? `${DEFAULT_CIPHERS}:${PSK_CIPHERS}` : DEFAULT_CIPHERS),
    };
    if (i.maxVersion) o.maxVersion = i.maxVersion;
    if (i.ca !== undefined) o.ca = i.ca;
    if (i.cert !== undefined) o.cert = i.cert;
    if (i.key !== undefined) o.key = i.key;
    return o;
  }

  async connect(input: TransportUrl | string, opts: ConnectOptions = {}): Promise<Connection> {
    const url = urlFor('tls', input);
    const what = `connect ${url.href}`;
    const psk = this.#init.psk;
    const options: ConnectionOptions = {
      ...this.#common(),
      host: url.host,
      port: url.port,
      rejectUnauthorized: true,
    };
    // SNI carries names only; an IP host is still checked against the certificate's IP SANs.
    if (isIP(url.host) === 0) options.servername = url.host;
    if (psk) {
      const { identity, key } = psk;
      if (identity === undefined || key === undefined) throw new InvalidOptionError('tls: connecting with a PSK needs its identity and key');
      options.pskCallback = () => ({ psk: Buffer.from(key), identity });
      // A PSK suite authenticates without any certificate: only check one if the server sent it.
      options.checkServerIdentity = (host, cert) => (cert && Object.keys(cert).length > 0 ? checkServerIdentity(host, cert) : undefined);
    }
    return cancellable<Connection>(
      { signal: opts.signal, timeoutMs: opts.timeoutMs ?? this.#settings.connectTimeoutMs, clock: this.#components.clock, what },
      (resolve, reject) => {
        const socket = tlsConnect(options);
        socket.setNoDelay(true);
        const onError = (err: Error): void => reject(classifySocketError(err, what));
        socket.once('error', onError);
        socket.once('secureConnect', () => {
          socket.off('error', onError);
          // A PSK suite sends no certificate: the key itself proved the server.
          const peer = certificateIdentity(socket) ?? (psk?.identity !== undefined ? Object.freeze({ kind: 'psk' as const, name: psk.identity }) : undefined);
          resolve(wrapSocket(socket, this.#connInit(opts.ppid, peer)));
        });
        return () => socket.destroy();
      },
    );
  }

  async listen(input: TransportUrl | string, opts: ListenOptions = {}): Promise<Listener> {
    const url = urlFor('tls', input);
    const i = this.#init;
    if (i.cert === undefined && !i.psk) throw new InvalidOptionError('tls: a listener needs cert and key, or psk');
    const options: TlsOptions = {
      ...this.#common(),
      requestCert: i.requireClientCert ?? false,
      rejectUnauthorized: i.requireClientCert ?? false,
      handshakeTimeout: i.handshakeTimeoutMs ?? 10_000,
    };
    const psk = i.psk;
    // The identity each handshake proved a key for: the socket's PSK identity once it is secure.
    const pskOf = new WeakMap<TLSSocket, string>();
    if (psk) {
      const lookup = pskResolver(psk);
      options.pskCallback = (socket, identity) => {
        const key = lookup(identity);
        if (!key) {
          this.#components.logger.info({ identity: JSON.stringify(identity.slice(0, MAX_PSK_IDENTITY_BYTES)) }, 'unknown PSK identity');
          return null;
        }
        pskOf.set(socket, identity);
        return Buffer.from(key);
      };
    }
    const server = createServer(options);
    const listener = await listenServer(server, url, { signal: opts.signal, ...this.#components });
    server.on('secureConnection', (socket) => {
      const pskIdentity = pskOf.get(socket);
      let peer: PeerIdentity | undefined;
      if (pskIdentity !== undefined) peer = Object.freeze({ kind: 'psk' as const, name: pskIdentity });
      else if (options.requestCert && socket.authorized) peer = certificateIdentity(socket);
      if (psk && peer === undefined) {
        // With a certificate too, OpenSSL would otherwise admit a client that skipped the PSK suites.
        const remote = endpointOf(socket.remoteAddress, socket.remotePort);
        socket.destroy();
        const e = new TlsAuthError(`inbound TLS handshake on ${listener.address.href}: the client proved no pre-shared key`);
        this.#components.logger.info({ err: e.message, code: e.code }, 'inbound TLS handshake failed');
        listener.inboundError(e, remote);
        return;
      }
      listener.accept(wrapSocket(socket, this.#connInit(opts.ppid, peer, opts.partialMessageTimeoutMs)));
    });
    server.on('tlsClientError', (err, socket) => {
      const what = `inbound TLS handshake on ${listener.address.href}`;
      // Node checks a client certificate after OpenSSL's handshake and drops the socket as a "hang up": the reason is here.
      const authError: unknown = socket.authorizationError;
      const e = authError ? new TlsAuthError(`${what}: ${String(authError)}`, { cause: authError }) : classifySocketError(err, what);
      this.#components.logger.info({ err: e.message, code: e.code }, 'inbound TLS handshake failed');
      listener.inboundError(e, endpointOf(socket.remoteAddress, socket.remotePort));
    });
    return listener;
  }
}

export function createTlsTransport(init: TlsTransportInit, components: TransportComponents = {}): MessageTransport {
  return new TlsTransport(init, components);
}
