/**
 * memory:// — an in-process network for tests. Hosts are names; a
 * MemoryNetwork (injected, never global) holds the listeners and the knobs:
 * latency (through the injected Clock), seeded loss, partitions, and kill
 * (a host vanishes without a word to its peers, like a dead machine).
 */
import { EventEmitter } from 'eventemitter3';
import { DEFAULT_MAX_MESSAGE_SIZE } from '../../protocols/framing.js';
import { DecodeError, DecodeErrorCode } from '../../protocols/errors.js';
import { AbortedError, InvalidOptionError, type RSerPoolError } from '../errors.js';
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
} from './errors.js';
import { DEFAULTS, cancellable, checkOutgoing } from './internal.js';
import { makeTransportUrl, parseTransportUrl } from './url.js';
import { PPID } from './types.js';
import type {
  Connection,
  ConnectionEvents,
  ConnectionStatus,
  ConnectOptions,
  Endpoint,
  PeerIdentity,
  Listener,
  ListenerEvents,
  ListenOptions,
  MessageTransport,
  TransportComponents,
  TransportInit,
  TransportUrl,
} from './types.js';

export interface MemoryNetworkInit {
  /** One-way delay of every message, connect and close, in ms of the network's clock. Default 0 (next event-loop turn). */
  latencyMs?: number;
  /** Probability (0..1) that a message is lost. Default 0. */
  loss?: number;
  /** Seed of the loss decisions, so a lossy test repeats exactly. Default 1. */
  seed?: number;
}

export interface MemoryTransportInit extends TransportInit {
  /** High-water mark of a connection's in-flight bytes; send() returns false above it. Default 64 KiB. */
  highWaterMark?: number;
  /** The identity this host's peers see as `peerIdentity`, as if a TLS handshake had proved it. */
  identity?: PeerIdentity;
}

export interface MemoryNetwork {
  /** A transport for the host `name`: its connections come from that name. */
  transport(name: string, init?: MemoryTransportInit, components?: TransportComponents): MessageTransport;
  latencyMs: number;
  loss: number;
  /** Drops everything between any host of `a` and any host of `b` (messages, connects, closes) until heal(). */
  partition(a: readonly string[], b: readonly string[]): void;
  heal(): void;
  /**
   * The host vanishes: its listeners and connections close locally (with a
   * reset error), its peers hear nothing, and nothing reaches it until revive().
   */
  kill(name: string): void;
  revive(name: string): void;
  isReachable(a: string, b: string): boolean;
}

export interface MemoryNetworkComponents {
  clock?: Clock;
  logger?: Logger;
}

/** mulberry32: small, seedable, good enough to decide losses. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

type Packet = { kind: 'msg'; bytes: Uint8Array; ppid: number; lost: boolean } | { kind: 'fin' } | { kind: 'rst' };

class Network implements MemoryNetwork {
  latencyMs: number;
  loss: number;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly listeners = new Map<string, MemoryListener>();
  readonly connections = new Set<MemoryConnection>();
  readonly #killed = new Set<string>();
  #splits: [Set<string>, Set<string>][] = [];
  readonly #random: () => number;
  #port = 49_152;

  constructor(init: MemoryNetworkInit, components: MemoryNetworkComponents) {
    this.latencyMs = init.latencyMs ?? 0;
    this.loss = init.loss ?? 0;
    this.#random = seededRandom(init.seed ?? 1);
    this.clock = components.clock ?? systemClock;
    this.logger = (components.logger ?? silentLogger).child({ component: 'transport-memory' });
  }

  transport(name: string, init: MemoryTransportInit = {}, components: TransportComponents = {}): MessageTransport {
    return new MemoryTransport(this, name, init, components);
  }

  partition(a: readonly string[], b: readonly string[]): void {
    this.#splits.push([new Set(a), new Set(b)]);
  }

  heal(): void {
    this.#splits = [];
  }

  kill(name: string): void {
    this.#killed.add(name);
    for (const l of [...this.listeners.values()]) if (l.address.host === name) void l.close();
    for (const c of [...this.connections]) if (c.local.host === name) c.vanish(new ConnectionResetError(`${c.id}: host ${name} was killed`));
  }

  revive(name: string): void {
    this.#killed.delete(name);
  }

  isReachable(a: string, b: string): boolean {
    if (this.#killed.has(a) || this.#killed.has(b)) return false;
    return !this.#splits.some(([x, y]) => (x.has(a) && y.has(b)) || (x.has(b) && y.has(a)));
  }

  lose(): boolean {
    return this.loss > 0 && this.#random() < this.loss;
  }

  ephemeralPort(): number {
    return this.#port++;
  }

  /** Runs fn after the one-way latency; callbacks run in the order scheduled. */
  later(fn: () => void): void {
    if (this.latencyMs <= 0) setImmediate(fn);
    else this.clock.setTimeout(fn, this.latencyMs);
  }
}

export function createMemoryNetwork(init: MemoryNetworkInit = {}, components: MemoryNetworkComponents = {}): MemoryNetwork {
  if (init.loss !== undefined && !(init.loss >= 0 && init.loss <= 1)) throw new InvalidOptionError(`loss ${init.loss} is not in 0..1`);
  return new Network(init, components);
}

interface ConnSettings {
  id: string;
  ppid: number;
  maxMessageSize: number;
  maxBufferedBytes: number;
  highWaterMark: number;
  closeTimeoutMs: number;
  clock: Clock;
}

class MemoryConnection extends EventEmitter<ConnectionEvents> implements Connection {
  readonly scheme = 'memory' as const;
  readonly id: string;
  readonly ppid: number;
  readonly local: Endpoint;
  readonly remote: Endpoint;
  readonly closed: Promise<RSerPoolError | undefined>;
  peerIdentity: PeerIdentity | undefined;
  peer: MemoryConnection | undefined;
  readonly #net: Network;
  readonly #s: ConnSettings;
  readonly #queue: Packet[] = [];
  #buffered = 0;
  #needDrain = false;
  #status: ConnectionStatus = 'open';
  #closeTimer: TimerHandle | undefined;
  #resolveClosed!: (err: RSerPoolError | undefined) => void;

  constructor(net: Network, local: Endpoint, remote: Endpoint, settings: ConnSettings) {
    super();
    this.#net = net;
    this.#s = settings;
    this.id = settings.id;
    this.ppid = settings.ppid;
    this.local = Object.freeze({ ...local });
    this.remote = Object.freeze({ ...remote });
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    net.connections.add(this);
  }

  get status(): ConnectionStatus {
    return this.#status;
  }

  get bufferedAmount(): number {
    return this.#buffered;
  }

  send(bytes: Uint8Array, ppid: number = this.ppid): boolean {
    if (this.#status !== 'open') throw new ConnectionClosedError(`${this.id}: cannot send, the connection is ${this.#status}`);
    // ASAP/ENRP must be framed as on a stream, so what works here works on tcp://.
    checkOutgoing(bytes, this.#s.maxMessageSize, ppid === PPID.ASAP || ppid === PPID.ENRP);
    if (this.#buffered + bytes.length > this.#s.maxBufferedBytes) {
      throw new BufferFullError(`${this.id}: ${this.#buffered} bytes in flight, limit ${this.#s.maxBufferedBytes}`);
    }
    this.#buffered += bytes.length;
    this.#push({ kind: 'msg', bytes: bytes.slice(), ppid, lost: this.#net.lose() });
    const ok = this.#buffered < this.#s.highWaterMark;
    if (!ok) this.#needDrain = true;
    return ok;
  }

  async close(): Promise<void> {
    if (this.#status === 'open') {
      this.#status = 'closing';
      this.#push({ kind: 'fin' });
      this.#closeTimer = this.#s.clock.setTimeout(() => this.#finish(undefined), this.#s.closeTimeoutMs);
    }
    await this.closed;
  }

  abort(err?: RSerPoolError): void {
    if (this.#status === 'closed') return;
    this.#queue.length = 0;
    this.#buffered = 0;
    this.#push({ kind: 'rst' });
    this.#finish(err ?? new AbortedError(`${this.id}: aborted locally`));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Killed host: close here, tell nobody. */
  vanish(err: RSerPoolError): void {
    this.#queue.length = 0;
    this.#buffered = 0;
    this.#finish(err);
  }

  #push(p: Packet): void {
    this.#queue.push(p);
    this.#net.later(() => this.#deliverHead());
  }

  #deliverHead(): void {
    const p = this.#queue.shift();
    if (!p) return; // discarded by abort or kill
    if (p.kind === 'msg') {
      this.#buffered -= p.bytes.length;
      if (this.#needDrain && this.#buffered < this.#s.highWaterMark && this.#status === 'open') {
        this.#needDrain = false;
        this.emit('drain');
      }
    }
    const peer = this.peer;
    if (!peer || !this.#net.isReachable(this.local.host, peer.local.host)) return;
    if (p.kind === 'msg') {
      if (!p.lost) peer.receive(p.bytes, p.ppid);
    } else if (p.kind === 'fin') peer.receiveFin();
    else peer.receiveReset();
  }

  receive(bytes: Uint8Array, ppid: number): void {
    if (this.#status === 'closed') return;
    if (bytes.length > this.#s.maxMessageSize) {
      const cause = new DecodeError(DecodeErrorCode.TooLarge, `message of ${bytes.length} bytes exceeds the limit of ${this.#s.maxMessageSize}`, {
        offset: 2,
        tlvType: bytes[0],
      });
      this.abort(new FramingError(`${this.id}: ${cause.message}`, { cause }));
      return;
    }
    this.emit('message', bytes, ppid);
  }

  receiveFin(): void {
    if (this.#status === 'closed') return;
    if (this.#status === 'open') {
      // As TCP without half-open: answer the FIN after what is already queued.
      this.#status = 'closing';
      this.#push({ kind: 'fin' });
    }
    this.#finish(undefined);
  }

  receiveReset(): void {
    this.#queue.length = 0;
    this.#buffered = 0;
    this.#finish(new ConnectionResetError(`${this.id}: reset by ${this.remote.host}:${this.remote.port}`));
  }

  #finish(err: RSerPoolError | undefined): void {
    if (this.#status === 'closed') return;
    this.#status = 'closed';
    if (this.#closeTimer !== undefined) this.#s.clock.clearTimeout(this.#closeTimer);
    this.#net.connections.delete(this);
    this.#resolveClosed(err);
    this.emit('close', err);
  }
}

class MemoryListener extends EventEmitter<ListenerEvents> implements Listener {
  readonly address: TransportUrl;
  readonly ppid: number;
  readonly identity: PeerIdentity | undefined;
  /** Settings of the connections it accepts: the listening transport's limits. */
  readonly transportSettings: (ppid?: number) => ConnSettings;
  readonly #net: Network;
  readonly #key: string;
  #closed = false;

  constructor(net: Network, address: TransportUrl, ppid: number, settings: (ppid?: number) => ConnSettings, identity: PeerIdentity | undefined) {
    super();
    this.#net = net;
    this.address = address;
    this.ppid = ppid;
    this.identity = identity;
    this.transportSettings = settings;
    this.#key = `${address.host}:${address.port}`;
    net.listeners.set(this.#key, this);
  }

  accept(conn: Connection): boolean {
    if (this.#closed || this.listenerCount('connection') === 0) return false;
    this.emit('connection', conn);
    return true;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#net.listeners.get(this.#key) === this) this.#net.listeners.delete(this.#key);
    this.emit('close');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

class MemoryTransport implements MessageTransport {
  readonly scheme = 'memory' as const;
  readonly #net: Network;
  readonly #name: string;
  readonly #init: MemoryTransportInit;
  readonly #clock: Clock;
  #seq = 0;

  constructor(net: Network, name: string, init: MemoryTransportInit, components: TransportComponents) {
    this.#net = net;
    this.#name = name;
    this.#init = init;
    this.#clock = components.clock ?? net.clock;
  }

  #settings(ppid: number | undefined): ConnSettings {
    const i = this.#init;
    return {
      id: `memory-${this.#name}-${++this.#seq}`,
      ppid: ppid ?? i.ppid ?? PPID.ASAP,
      maxMessageSize: i.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
      maxBufferedBytes: i.maxBufferedBytes ?? DEFAULTS.maxBufferedBytes,
      highWaterMark: i.highWaterMark ?? DEFAULTS.highWaterMark,
      closeTimeoutMs: i.closeTimeoutMs ?? DEFAULTS.closeTimeoutMs,
      clock: this.#clock,
    };
  }

  #url(input: TransportUrl | string): TransportUrl {
    const url = parseTransportUrl(input);
    if (url.scheme !== 'memory') throw new BadUrlError(url.href, `this transport serves memory://, not ${url.scheme}://`);
    return url;
  }

  async connect(input: TransportUrl | string, opts: ConnectOptions = {}): Promise<Connection> {
    const url = this.#url(input);
    const net = this.#net;
    const what = `connect ${url.href}`;
    const timeoutMs = opts.timeoutMs ?? this.#init.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs;
    return cancellable<Connection>({ signal: opts.signal, timeoutMs, clock: this.#clock, what }, (resolve, reject) => {
      let cancelled = false;
      let client: MemoryConnection | undefined;
      const local: Endpoint = { host: this.#name, port: net.ephemeralPort() };
      net.later(() => {
        // The SYN arrives, or is lost on the way.
        if (cancelled || !net.isReachable(local.host, url.host)) return;
        const listener = net.listeners.get(`${url.host}:${url.port}`);
        if (!listener) {
          net.later(() => {
            if (!cancelled && net.isReachable(local.host, url.host)) reject(new ConnectionRefusedError(`${what}: nothing listens there`));
          });
          return;
        }
        const remote: Endpoint = { host: url.host, port: url.port };
        const server = new MemoryConnection(net, remote, local, listener.transportSettings(opts.ppid));
        const c = new MemoryConnection(net, local, remote, this.#settings(opts.ppid ?? listener.ppid));
        client = c;
        server.peerIdentity = this.#init.identity;
        c.peerIdentity = listener.identity;
        server.peer = c;
        c.peer = server;
        if (!listener.accept(server)) {
          server.abort();
          return;
        }
        net.later(() => {
          if (!cancelled) resolve(c);
        });
      });
      return () => {
        cancelled = true;
        client?.abort();
      };
    });
  }

  async listen(input: TransportUrl | string, opts: ListenOptions = {}): Promise<Listener> {
    const url = this.#url(input);
    return cancellable<Listener>({ signal: opts.signal, clock: this.#clock, what: `listen ${url.href}` }, (resolve, reject) => {
      const key = `${url.host}:${url.port}`;
      if (this.#net.listeners.has(key)) reject(new AddressInUseError(`listen ${url.href}: address in use`));
      else {
        const ppid = opts.ppid ?? this.#init.ppid ?? PPID.ASAP;
        resolve(new MemoryListener(this.#net, makeTransportUrl('memory', url.host, url.port), ppid, (p) => this.#settings(p ?? ppid), this.#init.identity));
      }
      return () => {};
    });
  }
}
