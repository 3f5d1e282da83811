/**
 * sctp+udp:// (SCTP in UDP, RFC 6951 style: no root, no native build) and
 * sctp:// (SCTP on raw IPv4, as root), over the `sctp` npm package's
 * association state machine. Each message is one SCTP user message with its
 * own PPID; ASAP (11) and ENRP (12) go on their own streams.
 *
 * What this layer adds to the package: its own packet I/O (sctp-site.ts,
 * sctp-raw.ts), typed connect errors and deadlines, one write queue per
 * association that hands messages over only as the congestion and receive
 * windows allow, receive windows sized for the largest message, a close
 * that waits until everything sent is acknowledged, and a hard size check on
 * what arrives. Dead peers are left to the ASAP/ENRP keep-alives: nothing
 * here promises to notice one (see patches/README.md).
 */
import { EventEmitter } from 'eventemitter3';
import { DEFAULT_MAX_MESSAGE_SIZE } from '../../protocols/framing.js';
import { DecodeError, DecodeErrorCode } from '../../protocols/errors.js';
import { AbortedError, type RSerPoolError } from '../errors.js';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import { silentLogger, type Logger } from '../logger.js';
import {
  AddressInUseError,
  BadUrlError,
  BufferFullError,
  ConnectionClosedError,
  ConnectionRefusedError,
  ConnectionResetError,
  FramingError,
  TransportError,
} from './errors.js';
import { DEFAULTS, cancellable, checkOutgoing } from './internal.js';
import { connectRawSite, listenRawSite } from './sctp-raw.js';
import { bindUdpSite, connectUdpSite, findUdpSite, type SctpSite, type SiteInit } from './sctp-site.js';
import type { SctpAssociation } from './sctp-package.js';
import { makeTransportUrl, parseTransportUrl } from './url.js';
import { PPID } from './types.js';
import type {
  Connection,
  ConnectionEvents,
  ConnectionStatus,
  ConnectOptions,
  Endpoint,
  Listener,
  ListenerEvents,
  ListenOptions,
  MessageTransport,
  TransportComponents,
  TransportInit,
  TransportScheme,
  TransportUrl,
} from './types.js';

export type SctpScheme = 'sctp' | 'sctp+udp';

export interface SctpTransportInit extends TransportInit {
  /** Streams asked for each way. Default 3: ASAP on 0, ENRP on 1, any other PPID on 2. */
  streams?: number;
  /** Receive window offered to peers (bytes). Default the larger of 256 KiB and 4 x maxMessageSize: a whole message always fits. */
  receiveWindow?: number;
  /** send() returns false while more than this is queued. Default 64 KiB. */
  highWaterMark?: number;
}

interface Settings {
  scheme: SctpScheme;
  maxMessageSize: number;
  ppid: number;
  connectTimeoutMs: number;
  closeTimeoutMs: number;
  maxBufferedBytes: number;
  highWaterMark: number;
  streams: number;
  rwnd: number;
  clock: Clock;
  logger: Logger;
}

const DEFAULT_STREAMS = 3;
const MIN_WINDOW = 256 * 1024;

/** The stream a PPID goes on: ASAP 0, ENRP 1, everything else 2 (within what the peer granted). */
function streamFor(ppid: number, outbound: number): number {
  const s = ppid === PPID.ASAP ? 0 : ppid === PPID.ENRP ? 1 : 2;
  return Math.min(s, Math.max(0, outbound - 1));
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Bytes the association has taken but the peer has not acknowledged, or that wait for the next bundle. */
function outstanding(a: SctpAssociation): number {
  let n = a.flightsize;
  for (const c of a.queue) if (c.chunkType === 'data') n += c.size;
  return n;
}

/** Per-path settings the package takes from global defaults: the path MTU and the initial congestion window from it (RFC 4960 7.2.1). */
function tune(a: SctpAssociation, pmtu: number): void {
  a.PMTU = pmtu;
  a.cwnd = Math.min(4 * pmtu, Math.max(2 * pmtu, 4_380));
}

interface Outgoing {
  bytes: Buffer;
  ppid: number;
}

class SctpConnection extends EventEmitter<ConnectionEvents> implements Connection {
  readonly id: string;
  readonly scheme: TransportScheme;
  readonly local: Endpoint;
  readonly remote: Endpoint;
  readonly ppid: number;
  readonly closed: Promise<RSerPoolError | undefined>;
  readonly #site: SctpSite;
  readonly #assoc: SctpAssociation;
  readonly #s: Settings;
  readonly #queue: Outgoing[] = [];
  #queued = 0;
  #needDrain = false;
  #status: ConnectionStatus = 'open';
  #shutdownSent = false;
  #closeTimer: TimerHandle | undefined;
  #resolveClosed!: (err: RSerPoolError | undefined) => void;

  constructor(site: SctpSite, assoc: SctpAssociation, remote: Endpoint, id: string, ppid: number, s: Settings) {
    super();
    this.#site = site;
    this.#assoc = assoc;
    this.#s = s;
    this.id = id;
    this.scheme = s.scheme;
    this.ppid = ppid;
    this.local = site.local;
    this.remote = Object.freeze({ ...remote });
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    site.retain();
    site.onUnreachable.add(this.#onUnreachable);
    assoc.on('DATA ARRIVE', () => this.#onData());
    // After the package's own SACK handler: the windows have moved.
    assoc.on('sack', () => this.#pump());
    assoc.on('shutdown', () => {
      // The peer closes: it takes no new data (RFC 4960 9.2).
      if (this.#status === 'open') this.#status = 'closing';
      this.#dropQueue();
    });
    assoc.once('COMMUNICATION LOST', (event?: string) => {
      const why = event === 'abort' ? 'reset by the peer (ABORT)' : 'the peer is unreachable';
      this.#finish(new ConnectionResetError(`${this.id}: ${why}`));
    });
    assoc.once('SHUTDOWN COMPLETE', () => this.#finish(undefined));
  }

  get status(): ConnectionStatus {
    return this.#status;
  }

  get bufferedAmount(): number {
    return this.#queued;
  }

  send(bytes: Uint8Array, ppid: number = this.ppid): boolean {
    if (this.#status !== 'open') throw new ConnectionClosedError(`${this.id}: cannot send, the connection is ${this.#status}`);
    // ASAP and ENRP must carry their own framing, so what works here works on tcp:// too.
    checkOutgoing(bytes, this.#s.maxMessageSize, ppid === PPID.ASAP || ppid === PPID.ENRP);
    if (this.#queued + bytes.length > this.#s.maxBufferedBytes) {
      throw new BufferFullError(`${this.id}: ${this.#queued} bytes already queued, limit ${this.#s.maxBufferedBytes}`);
    }
    this.#queue.push({ bytes: asBuffer(bytes), ppid });
    this.#queued += bytes.length;
    this.#pump();
    const ok = this.#queued < this.#s.highWaterMark;
    if (!ok) this.#needDrain = true;
    return ok;
  }

  async close(): Promise<void> {
    if (this.#status === 'open') {
      this.#status = 'closing';
      this.#closeTimer = this.#s.clock.setTimeout(() => {
        this.#s.logger.debug({ id: this.id }, 'peer did not finish the shutdown in time, aborting');
        this.#abortAssociation();
        this.#finish(undefined);
      }, this.#s.closeTimeoutMs);
      this.#pump();
    }
    await this.closed;
  }

  abort(err?: RSerPoolError): void {
    if (this.#status === 'closed') return;
    this.#dropQueue();
    this.#abortAssociation();
    this.#finish(err ?? new AbortedError(`${this.id}: aborted locally`));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Hands queued messages to the association while the congestion window has
   * room (RFC 4960 6.1 B: new data while less than cwnd is outstanding) and
   * the peer's receive window takes the message (6.1 A); with nothing in
   * flight a message always goes, so none waits for room it cannot get. One
   * queue for all streams: the package keeps one drain callback per
   * association, and concurrent writers on several streams stalled it.
   */
  #pump(): void {
    const a = this.#assoc;
    if (this.#status === 'closed') return;
    if (a.state === 'ESTABLISHED') {
      let inFlight = outstanding(a);
      while (this.#queue.length > 0) {
        const next = this.#queue[0]!;
        if (inFlight > 0 && (inFlight >= a.cwnd || inFlight + next.bytes.length > a.peer_rwnd)) break;
        this.#queue.shift();
        this.#queued -= next.bytes.length;
        inFlight += next.bytes.length;
        a.SEND(next.bytes, { stream_id: streamFor(next.ppid, a.OS), ppid: next.ppid }, (err) => {
          if (err) this.#sendFailed(err);
        });
      }
    }
    if (this.#needDrain && this.#queued < this.#s.highWaterMark && this.#status === 'open') {
      this.#needDrain = false;
      this.emit('drain');
    }
    if (this.#status === 'closing' && !this.#shutdownSent && this.#queue.length === 0 && outstanding(a) === 0) {
      this.#shutdownSent = true;
      if (a.state === 'ESTABLISHED') a.SHUTDOWN();
      else if (a.state !== 'SHUTDOWN-RECEIVED' && a.state !== 'SHUTDOWN-ACK-SENT') this.#finish(undefined);
    }
  }

  #sendFailed(err: Error): void {
    if (this.#status === 'closed') return;
    this.#s.logger.warn({ id: this.id, err: err.message }, 'the SCTP association refused a message');
    this.abort(new TransportError(`${this.id}: ${err.message}`, { cause: err }));
  }

  #onData(): void {
    const bytes = this.#assoc.RECEIVE();
    if (!bytes || this.#status === 'closed') return;
    if (bytes.length > this.#s.maxMessageSize) {
      const cause = new DecodeError(DecodeErrorCode.TooLarge, `message of ${bytes.length} bytes exceeds the limit of ${this.#s.maxMessageSize}`, {
        offset: 2,
        tlvType: bytes[0],
      });
      const e = new FramingError(`${this.id}: ${cause.message}`, { cause });
      this.#s.logger.warn({ id: this.id, remote: this.remote, err: e.message }, 'closing connection on an oversize message');
      this.abort(e);
      return;
    }
    this.emit('message', bytes, bytes.ppid ?? this.ppid);
  }

  readonly #onUnreachable = (err: RSerPoolError): void => {
    if (this.#status === 'closed') return;
    this.#abortAssociation();
    this.#finish(new ConnectionResetError(`${this.id}: ${err.message}`, { cause: err }));
  };

  #abortAssociation(): void {
    if (this.#assoc.endpoint) this.#assoc.ABORT();
  }

  #dropQueue(): void {
    this.#queue.length = 0;
    this.#queued = 0;
  }

  #finish(err: RSerPoolError | undefined): void {
    if (this.#status === 'closed') return;
    this.#status = 'closed';
    this.#dropQueue();
    if (this.#closeTimer !== undefined) this.#s.clock.clearTimeout(this.#closeTimer);
    if (this.#assoc.endpoint) this.#assoc._destroy();
    this.#site.onUnreachable.delete(this.#onUnreachable);
    this.#site.release();
    this.#s.logger.debug({ id: this.id, err: err?.code }, 'connection closed');
    this.#resolveClosed(err);
    this.emit('close', err);
  }
}

class SctpListener extends EventEmitter<ListenerEvents> implements Listener {
  readonly address: TransportUrl;
  readonly #site: SctpSite;
  #closed = false;

  constructor(site: SctpSite, scheme: SctpScheme, accept: (assoc: SctpAssociation, remote: Endpoint) => Connection | undefined) {
    super();
    this.#site = site;
    this.address = makeTransportUrl(scheme, site.local.host, site.local.port);
    site.acceptor = (_site, assoc, remote) => {
      // Up synchronously after this returns (COOKIE ECHO accepted); DATA bundled with it follows.
      assoc.once('COMMUNICATION UP', () => {
        const conn = accept(assoc, remote);
        if (!conn) return;
        if (this.#closed || this.listenerCount('connection') === 0) {
          conn.abort();
          return;
        }
        this.emit('connection', conn);
      });
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#site.acceptor = undefined;
    // The port stays open while connections accepted here live; new INITs get an ABORT.
    this.#site.closeIfIdle();
    this.emit('close');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

class SctpTransport implements MessageTransport {
  readonly scheme: TransportScheme;
  readonly #s: Settings;
  #seq = 0;

  constructor(scheme: SctpScheme, init: SctpTransportInit, components: TransportComponents) {
    this.scheme = scheme;
    const maxMessageSize = init.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.#s = {
      scheme,
      maxMessageSize,
      ppid: init.ppid ?? PPID.ASAP,
      connectTimeoutMs: init.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      closeTimeoutMs: init.closeTimeoutMs ?? DEFAULTS.closeTimeoutMs,
      maxBufferedBytes: init.maxBufferedBytes ?? DEFAULTS.maxBufferedBytes,
      highWaterMark: init.highWaterMark ?? DEFAULTS.highWaterMark,
      streams: init.streams ?? DEFAULT_STREAMS,
      rwnd: init.receiveWindow ?? Math.max(MIN_WINDOW, 4 * maxMessageSize),
      clock: components.clock ?? systemClock,
      logger: (components.logger ?? silentLogger).child({ component: `transport-${scheme}` }),
    };
  }

  get #scheme(): SctpScheme {
    return this.#s.scheme;
  }

  #url(input: TransportUrl | string): TransportUrl {
    const url = parseTransportUrl(input);
    if ((url.scheme as string) !== this.#scheme) throw new BadUrlError(url.href, `this transport serves ${this.#scheme}://, not ${url.scheme}://`);
    return url;
  }

  #siteInit(): Omit<SiteInit, 'port' | 'local'> {
    return { rwnd: this.#s.rwnd, streams: this.#s.streams, logger: this.#s.logger };
  }

  #connection(site: SctpSite, assoc: SctpAssociation, remote: Endpoint, ppid: number | undefined): Connection {
    return new SctpConnection(site, assoc, remote, `${this.#scheme}-${++this.#seq}`, ppid ?? this.#s.ppid, this.#s);
  }

  async connect(input: TransportUrl | string, opts: ConnectOptions = {}): Promise<Connection> {
    const url = this.#url(input);
    const what = `connect ${url.href}`;
    const remote: Endpoint = { host: url.host, port: url.port };
    const timeoutMs = opts.timeoutMs ?? this.#s.connectTimeoutMs;
    return cancellable<Connection>({ signal: opts.signal, timeoutMs, clock: this.#s.clock, what }, (resolve, reject) => {
      let site: SctpSite | undefined;
      let assoc: SctpAssociation | undefined;
      let settled = false;
      const release = (): void => {
        site?.onUnreachable.delete(onUnreachable);
        site?.release();
      };
      const fail = (e: RSerPoolError): void => {
        if (settled) return;
        settled = true;
        if (assoc?.endpoint) assoc._destroy();
        release();
        reject(e);
      };
      const onUnreachable = (e: RSerPoolError): void => fail(e);
      const opened = (err: RSerPoolError | undefined, s?: SctpSite): void => {
        if (err || !s) {
          fail(err ?? new TransportError(`${what}: no site`));
          return;
        }
        if (settled) {
          s.closeIfIdle();
          return;
        }
        site = s;
        s.retain();
        s.onUnreachable.add(onUnreachable);
        const a = s.endpoint.ASSOCIATE({ remoteAddress: s.addressFor(remote), remotePort: url.port, OS: this.#s.streams, MIS: this.#s.streams });
        assoc = a;
        tune(a, s.pmtuFor(remote));
        a.once('COMMUNICATION UP', () => {
          if (settled) return;
          settled = true;
          const conn = this.#connection(s, a, remote, opts.ppid);
          release();
          resolve(conn);
        });
        a.once('COMMUNICATION LOST', (event?: string) => {
          // An ABORT answering our INIT: the port is closed (no listener there).
          fail(event === 'abort' ? new ConnectionRefusedError(`${what}: refused (ABORT)`) : new ConnectionResetError(`${what}: the peer is unreachable`));
        });
      };
      const cancelOpen = this.#scheme === 'sctp+udp' ? connectUdpSite(remote, this.#siteInit(), opened) : connectRawSite(remote, this.#siteInit(), opened);
      return () => {
        if (settled) return;
        settled = true;
        cancelOpen();
        if (assoc?.endpoint) assoc.ABORT();
        release();
      };
    });
  }

  async listen(input: TransportUrl | string, opts: ListenOptions = {}): Promise<Listener> {
    const url = this.#url(input);
    return cancellable<Listener>({ signal: opts.signal, clock: this.#s.clock, what: `listen ${url.href}` }, (resolve, reject) => {
      let cancelled = false;
      const ppid = opts.ppid;
      const listening = (site: SctpSite): void => {
        if (cancelled) {
          site.closeIfIdle();
          return;
        }
        if (site.acceptor) {
          reject(new AddressInUseError(`listen ${url.href}: address in use`));
          return;
        }
        resolve(
          new SctpListener(site, this.#scheme, (assoc, remote) => {
            tune(assoc, site.pmtuFor(remote));
            return this.#connection(site, assoc, remote, ppid);
          }),
        );
      };
      const open = this.#scheme === 'sctp+udp' ? this.#listenUdp(url) : listenRawSite(url.host, url.port, this.#siteInit());
      open.then(listening, reject);
      return () => {
        cancelled = true;
      };
    });
  }

  async #listenUdp(url: TransportUrl): Promise<SctpSite> {
    // A port whose listener closed while its connections live on is still ours to listen on again.
    const lingering = url.port === 0 ? undefined : findUdpSite(url.host, url.port);
    return lingering ?? bindUdpSite(url.host, url.port, this.#siteInit());
  }
}

/** sctp+udp:// — SCTP over UDP on the SCTP port's UDP port; runs anywhere. */
export function createSctpUdpTransport(init: SctpTransportInit = {}, components: TransportComponents = {}): MessageTransport {
  return new SctpTransport('sctp+udp', init, components);
}

/** sctp:// — SCTP directly on IPv4; needs root and the raw-socket package (SctpUnavailableError otherwise, at the first connect or listen). */
export function createSctpTransport(init: SctpTransportInit = {}, components: TransportComponents = {}): MessageTransport {
  return new SctpTransport('sctp', init, components);
}
