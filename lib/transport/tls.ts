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
} from 'node:tls';
import { systemClock } from '../clock.js';
import { silentLogger } from '../logger.js';
import { InvalidOptionError } from '../errors.js';
import { TlsAuthError } from './errors.js';
import { cancellable } from './internal.js';
import { classifySocketError, endpointOf, listenServer, wrapSocket, type StreamConnectionInit } from './stream.js';
import { streamSettings, urlFor, type StreamSettings } from './tcp.js';
import type { Connection, ConnectOptions, Listener, ListenOptions, MessageTransport, TransportComponents, TransportInit, TransportUrl } from './types.js';

type Pem = string | Buffer | (string | Buffer)[];

/** TLS pre-shared key (RFC 5355 makes TLS-PSK mandatory to implement). */
export interface TlsPsk {
  /** Identity this side presents when connecting. */
  identity: string;
  key: Uint8Array;
  /** Server side: the key for a client's identity; default accepts `identity` only. */
  lookup?: (identity: string) => Uint8Array | undefined;
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
    this.#init = init;
    this.#settings = streamSettings(init);
    this.#components = {
      clock: components.clock ?? systemClock,
      logger: (components.logger ?? silentLogger).child({ component: 'transport-tls' }),
    };
  }

  #connInit(ppid: number | undefined, partialMessageTimeoutMs?: number): StreamConnectionInit {
    return {
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
      options.pskCallback = () => ({ psk: Buffer.from(psk.key), identity: psk.identity });
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
          resolve(wrapSocket(socket, this.#connInit(opts.ppid)));
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
    if (psk) {
      const lookup = psk.lookup ?? ((id: string) => (id === psk.identity ? psk.key : undefined));
      options.pskCallback = (_socket, identity) => {
        const key = lookup(identity);
        if (!key) this.#components.logger.info({ identity }, 'unknown PSK identity');
        return key ? Buffer.from(key) : null;
      };
    }
    const server = createServer(options);
    const listener = await listenServer(server, url, { signal: opts.signal, ...this.#components });
    server.on('secureConnection', (socket) => listener.accept(wrapSocket(socket, this.#connInit(opts.ppid, opts.partialMessageTimeoutMs))));
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
