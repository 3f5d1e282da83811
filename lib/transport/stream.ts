/** The Connection and Listener shared by tcp:// and tls:// (a node:net Socket, TLS or not). */
import type { AddressInfo, Server, Socket } from 'node:net';
import { EventEmitter } from 'eventemitter3';
import { StreamFramer } from '../../protocols/framing.js';
import { AbortedError, RSerPoolError, TimeoutError } from '../errors.js';
import type { Clock, TimerHandle } from '../clock.js';
import type { Logger } from '../logger.js';
import {
  AddressInUseError,
  BufferFullError,
  ConnectionClosedError,
  ConnectionRefusedError,
  ConnectionResetError,
  FramingError,
  PartialMessageTimeoutError,
  PpidMismatchError,
  TlsAuthError,
  TransportError,
} from './errors.js';
import { cancellable, checkOutgoing } from './internal.js';
import { makeTransportUrl } from './url.js';
import type { Connection, ConnectionEvents, ConnectionStatus, Endpoint, Listener, ListenerEvents, PeerIdentity, TransportUrl } from './types.js';

const CERT_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'HOSTNAME_MISMATCH',
  'INVALID_CA',
  'INVALID_PURPOSE',
]);

/** Maps a node socket error to the transport's typed errors. */
export function classifySocketError(err: unknown, what: string): RSerPoolError {
  if (err instanceof RSerPoolError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const text = err instanceof Error ? err.message : String(err);
  const msg = `${what}: ${text}`;
  if (typeof code === 'string') {
    if (code === 'ECONNREFUSED') return new ConnectionRefusedError(msg, { cause: err });
    if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED') return new ConnectionResetError(msg, { cause: err });
    if (code === 'EADDRINUSE') return new AddressInUseError(msg, { cause: err });
    if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return new TimeoutError(msg, { cause: err });
    if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code.startsWith('CERT_') || CERT_CODES.has(code)) {
      return new TlsAuthError(msg, { cause: err });
    }
  }
  return new TransportError(msg, { cause: err });
}

export function endpointOf(address: string | undefined, port: number | undefined): Endpoint {
  return Object.freeze({ host: address ?? '', port: port ?? 0 });
}

export interface StreamConnectionInit {
  scheme: 'tcp' | 'tls';
  id: string;
  ppid: number;
  maxMessageSize: number;
  maxBufferedBytes: number;
  closeTimeoutMs: number;
  /** A message begun and not finished this long resets the connection; 0 never. */
  partialMessageTimeoutMs: number;
  /** What the TLS handshake proved about the peer. */
  peerIdentity?: PeerIdentity | undefined;
  clock: Clock;
  logger: Logger;
}

/**
 * Closes with a TCP RST so the peer sees a reset, not a graceful end. A TLS
 * socket refuses resetAndDestroy() (its handle is not the TCP one), so it
 * just ends without close_notify, which Node peers report as a plain close.
 */
function resetSocket(socket: Socket): void {
  // After end() libuv refuses the reset while the shutdown is pending (EINVAL), and Node then forgets
  // the handle without closing it: 'close' never comes, and at exit the process spins forever in its
  // handle clean-up. A plain destroy closes it.
  if (socket.writableEnded) {
    socket.destroy();
    return;
  }
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

const EMPTY = new Uint8Array(0);

class StreamConnection extends EventEmitter<ConnectionEvents> implements Connection {
  readonly id: string;
  readonly scheme: 'tcp' | 'tls';
  readonly local: Endpoint;
  readonly remote: Endpoint;
  readonly peerIdentity: PeerIdentity | undefined;
  readonly ppid: number;
  readonly closed: Promise<RSerPoolError | undefined>;
  readonly #socket: Socket;
  readonly #framer: StreamFramer;
  readonly #init: StreamConnectionInit;
  #status: ConnectionStatus = 'open';
  #error: RSerPoolError | undefined;
  #needDrain = false;
  #closeTimer: TimerHandle | undefined;
  /** When the message now being received began (undefined: none pending). */
  #partialSince: number | undefined;
  #partialTimer: TimerHandle | undefined;
  #resolveClosed!: (err: RSerPoolError | undefined) => void;

  constructor(socket: Socket, init: StreamConnectionInit) {
    super();
    this.#socket = socket;
    this.#init = init;
    this.id = init.id;
    this.scheme = init.scheme;
    this.ppid = init.ppid;
    this.local = endpointOf(socket.localAddress, socket.localPort);
    this.remote = endpointOf(socket.remoteAddress, socket.remotePort);
    this.peerIdentity = init.peerIdentity;
    this.#framer = new StreamFramer({ maxMessageSize: init.maxMessageSize });
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => {
      if (!this.#needDrain) return;
      this.#needDrain = false;
      this.emit('drain');
    });
    socket.on('end', () => {
      if (this.#framer.buffered > 0 && this.#error === undefined) {
        this.#error = new FramingError(`${this.id}: the peer closed inside a message (${this.#framer.buffered} bytes pending)`);
      }
    });
    socket.on('error', (err) => {
      this.#error ??= classifySocketError(err, this.id);
    });
    socket.on('close', () => this.#finish());
    if (socket.destroyed) queueMicrotask(() => this.#finish());
  }

  get status(): ConnectionStatus {
    return this.#status;
  }

  get bufferedAmount(): number {
    return this.#socket.writableLength;
  }

  send(bytes: Uint8Array, ppid?: number): boolean {
    if (this.#status !== 'open') throw new ConnectionClosedError(`${this.id}: cannot send, the connection is ${this.#status}`);
    if (ppid !== undefined && ppid !== this.ppid) {
      throw new PpidMismatchError(`${this.id} carries ppid ${this.ppid} only (a byte stream has no ppid field), not ${ppid}`);
    }
    checkOutgoing(bytes, this.#init.maxMessageSize, true);
    const queued = this.#socket.writableLength;
    if (queued + bytes.length > this.#init.maxBufferedBytes) {
      throw new BufferFullError(`${this.id}: ${queued} bytes already queued, limit ${this.#init.maxBufferedBytes}`);
    }
    const ok = this.#socket.write(bytes);
    if (!ok) this.#needDrain = true;
    return ok;
  }

  async close(): Promise<void> {
    if (this.#status === 'open') {
      this.#status = 'closing';
      this.#socket.end();
      this.#closeTimer = this.#init.clock.setTimeout(() => {
        this.#init.logger.debug({ id: this.id }, 'peer did not close in time, resetting');
        resetSocket(this.#socket);
      }, this.#init.closeTimeoutMs);
    }
    await this.closed;
  }

  abort(err?: RSerPoolError): void {
    if (this.#status === 'closed') return;
    this.#error ??= err ?? new AbortedError(`${this.id}: aborted locally`);
    resetSocket(this.#socket);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #onData(chunk: Buffer): void {
    if (this.#status === 'closed') return;
    let messages: Uint8Array[];
    try {
      messages = this.#framer.push(chunk);
    } catch (err) {
      this.#framingFault(err);
      return;
    }
    this.#notePartial(messages.length > 0);
    for (const m of messages) {
      if (this.#isClosed()) return; // a handler closed it
      this.emit('message', m, this.ppid);
    }
    if (messages.length === 0 || this.#isClosed()) return;
    // The framer hands over frames completed before a fault and keeps the fault for the next push: ask for it now.
    try {
      this.#framer.push(EMPTY);
    } catch (err) {
      this.#framingFault(err);
    }
  }

  /** A peer that starts a message and never ends it would hold the connection and its buffer: give it a deadline. */
  #notePartial(completed: boolean): void {
    const limit = this.#init.partialMessageTimeoutMs;
    if (limit <= 0) return;
    if (this.#framer.buffered === 0) {
      this.#partialSince = undefined;
      return;
    }
    if (completed || this.#partialSince === undefined) this.#partialSince = this.#init.clock.now();
    this.#partialTimer ??= this.#init.clock.setTimeout(() => this.#checkPartial(), limit);
  }

  #checkPartial(): void {
    this.#partialTimer = undefined;
    const since = this.#partialSince;
    if (since === undefined || this.#status === 'closed') return;
    const limit = this.#init.partialMessageTimeoutMs;
    const age = this.#init.clock.now() - since;
    if (age < limit) {
      this.#partialTimer = this.#init.clock.setTimeout(() => this.#checkPartial(), limit - age);
      return;
    }
    const e = new PartialMessageTimeoutError(`${this.id}: a message of which ${this.#framer.buffered} bytes arrived was not finished within ${age} ms`);
    this.#init.logger.info({ id: this.id, remote: this.remote, err: e.message }, 'closing connection on an unfinished message');
    this.abort(e);
  }

  #framingFault(err: unknown): void {
    // The stream has lost sync: nothing after this point can be trusted.
    const e = new FramingError(`${this.id}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    this.#init.logger.warn({ id: this.id, remote: this.remote, err: e.message }, 'closing connection on framing error');
    this.abort(e);
  }

  #isClosed(): boolean {
    return this.#status === 'closed';
  }

  #finish(): void {
    if (this.#status === 'closed') return;
    this.#status = 'closed';
    if (this.#closeTimer !== undefined) this.#init.clock.clearTimeout(this.#closeTimer);
    if (this.#partialTimer !== undefined) this.#init.clock.clearTimeout(this.#partialTimer);
    const err = this.#error;
    this.#init.logger.debug({ id: this.id, err: err?.code }, 'connection closed');
    this.#resolveClosed(err);
    this.emit('close', err);
  }
}

export function wrapSocket(socket: Socket, init: StreamConnectionInit): Connection {
  return new StreamConnection(socket, init);
}

/** A net.Server or tls.Server: `acceptEvent` is 'connection' or 'secureConnection'. */
class StreamListener extends EventEmitter<ListenerEvents> implements Listener {
  readonly address: TransportUrl;
  readonly #server: Server;
  readonly #logger: Logger;
  #closed = false;

  constructor(server: Server, scheme: 'tcp' | 'tls', logger: Logger) {
    super();
    this.#server = server;
    this.#logger = logger;
    const a = server.address() as AddressInfo;
    this.address = makeTransportUrl(scheme, a.address, a.port);
    server.on('error', (err) => logger.warn({ err: err.message, address: this.address.href }, 'listener error'));
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** Hands an accepted connection to the application, or drops it when nobody listens. */
  accept(conn: Connection): void {
    if (this.#closed || this.listenerCount('connection') === 0) {
      this.#logger.warn({ id: conn.id }, 'no connection handler on the listener, dropping');
      conn.abort();
      return;
    }
    this.emit('connection', conn);
  }

  inboundError(err: RSerPoolError, remote: Endpoint): void {
    this.emit('inboundError', err, remote);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Frees the port at once; the callback would wait for every accepted connection.
    this.#server.close();
    this.emit('close');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

export type { StreamListener };

interface StreamListenOptions {
  signal?: AbortSignal | undefined;
  clock: Clock;
  logger: Logger;
}

/** Binds `server` to url's host and port; the listener wraps it once bound. */
export function listenServer(server: Server, url: TransportUrl, opts: StreamListenOptions): Promise<StreamListener> {
  const scheme = url.scheme === 'tls' ? 'tls' : 'tcp';
  return cancellable<StreamListener>({ signal: opts.signal, clock: opts.clock, what: `listen ${url.href}` }, (resolve, reject) => {
    const onError = (err: Error): void => reject(classifySocketError(err, `listen ${url.href}`));
    server.once('error', onError);
    server.listen({ host: url.host, port: url.port }, () => {
      server.off('error', onError);
      resolve(new StreamListener(server, scheme, opts.logger));
    });
    return () => {
      server.off('error', onError);
      server.close();
    };
  });
}
