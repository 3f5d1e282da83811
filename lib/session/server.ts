/** The PE side: accepts PU connections, one ServerSession each; a bad session never touches the others. */
import { EventEmitter } from 'eventemitter3';
import { AsapMessageType, type AsapMessage } from '../../protocols/asap/types.js';
import type { PoolElementParameter } from '../../protocols/parameters/types.js';
import { InvalidOptionError, type RSerPoolError } from '../errors.js';
import { systemClock, type Clock } from '../clock.js';
import { silentLogger, type Logger } from '../logger.js';
import { createTcpTransport } from '../transport/tcp.js';
import { parseTransportUrl } from '../transport/url.js';
import type { Connection, Endpoint, Listener, MessageTransport, TransportUrl } from '../transport/types.js';
import { SessionChannel } from './channel.js';
import { SessionClosedError, SessionLimitError, SessionServerStateError } from './errors.js';
import { sessionWireSettings } from './session.js';
import { toHandle } from './util.js';
import type {
  ServerSession,
  ServerSessionEvents,
  SessionLeaveOptions,
  SessionServer,
  SessionServerComponents,
  SessionServerEvents,
  SessionServerInit,
} from './types.js';

/** A cookie parameter's value must fit a 16-bit TLV inside a 16-bit message: 65,535 - 4 - 4, less padding slack. */
const MAX_COOKIE = 65_524;

interface ServerSessionSettings {
  maxMessageSize: number;
}

class ServerSessionImpl extends EventEmitter<ServerSessionEvents> implements ServerSession {
  readonly id: string;
  readonly remote: Endpoint;
  readonly #ch: SessionChannel;
  readonly #s: ServerSessionSettings;
  readonly #logger: Logger;
  #echoed: Uint8Array | undefined;
  #sawData = false;

  constructor(ch: SessionChannel, s: ServerSessionSettings, logger: Logger) {
    super();
    this.#ch = ch;
    this.#s = s;
    this.#logger = logger;
    this.id = ch.conn.id;
    this.remote = ch.conn.remote;
    ch.on('data', (bytes) => {
      this.#sawData = true;
      this.emit('message', bytes);
    });
    ch.on('asap', (m) => this.#onAsap(m));
    ch.on('close', (err) => this.emit('close', err));
  }

  get echoedCookie(): Uint8Array | undefined {
    return this.#echoed;
  }

  get closed(): boolean {
    return this.#ch.isClosed;
  }

  get queuedBytes(): number {
    return this.#ch.queuedBytes;
  }

  #onAsap(m: AsapMessage): void {
    switch (m.type) {
      case AsapMessageType.CookieEcho:
        // The PU sends it first on a takeover; a late one is a confused PU, still worth handing over.
        if (this.#sawData) this.#logger.warn({ id: this.id }, 'cookie echo after data');
        this.#echoed = m.cookie.slice();
        this.emit('cookieEcho', this.#echoed);
        return;
      case AsapMessageType.BusinessCard:
        this.emit('businessCard', m.handle.slice(), m.elements);
        return;
      default:
        this.#logger.debug({ id: this.id, type: m.type }, 'ignoring an ASAP message a PU has no reason to send');
    }
  }

  #open(): void {
    if (this.#ch.isClosed) throw new SessionClosedError(`${this.id}: the session is closed`);
  }

  send(bytes: Uint8Array): void {
    this.#open();
    if (bytes.length > this.#s.maxMessageSize) throw new SessionLimitError('message', bytes.length, this.#s.maxMessageSize);
    this.#ch.sendData(bytes);
  }

  sendCookie(cookie: Uint8Array): void {
    this.#open();
    if (cookie.length > MAX_COOKIE) throw new SessionLimitError('cookie', cookie.length, MAX_COOKIE);
    this.#ch.sendAsap({ type: AsapMessageType.Cookie, cookie: cookie.slice() });
  }

  sendBusinessCard(handle: Uint8Array | string, elements: PoolElementParameter[]): void {
    this.#open();
    this.#ch.sendAsap({ type: AsapMessageType.BusinessCard, handle: toHandle(handle), elements: [...elements] });
  }

  close(): Promise<void> {
    return this.#ch.close();
  }

  abort(err?: RSerPoolError): void {
    this.#ch.abort(err);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

class SessionServerImpl extends EventEmitter<SessionServerEvents> implements SessionServer {
  readonly #url: TransportUrl;
  readonly #transport: MessageTransport;
  readonly #wire: ReturnType<typeof sessionWireSettings>;
  readonly #idleTimeoutMs: number;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #sessions = new Set<ServerSessionImpl>();
  #listener: Listener | undefined;
  #stopped = false;

  constructor(init: SessionServerInit, components: SessionServerComponents) {
    super();
    this.#url = parseTransportUrl(init.listen);
    if (!init.transport && this.#url.scheme !== 'tcp') {
      throw new InvalidOptionError(`a session server on ${this.#url.scheme}:// needs a transport`);
    }
    this.#transport = init.transport ?? createTcpTransport({}, components);
    this.#wire = sessionWireSettings(init);
    this.#idleTimeoutMs = init.idleTimeoutMs ?? 60_000;
    if (!(this.#idleTimeoutMs >= 0)) throw new InvalidOptionError(`idleTimeoutMs must be >= 0, not ${init.idleTimeoutMs}`);
    this.#clock = components.clock ?? systemClock;
    this.#logger = (components.logger ?? silentLogger).child({ component: 'session-server' });
  }

  get address(): TransportUrl {
    if (!this.#listener) throw new SessionServerStateError('the session server is not listening (call start())');
    return this.#listener.address;
  }

  get sessions(): readonly ServerSession[] {
    return [...this.#sessions];
  }

  async start(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#stopped) throw new SessionServerStateError('a stopped session server cannot start again');
    if (this.#listener) return;
    const listener = await this.#transport.listen(this.#url, { signal: opts.signal, ppid: this.#wire.ppid });
    listener.on('connection', (conn) => this.#accept(conn));
    this.#listener = listener;
    this.#logger.debug({ address: listener.address.href }, 'session server listening');
  }

  #accept(conn: Connection): void {
    const ch = new SessionChannel(conn, {
      maxMessageSize: this.#wire.maxMessageSize,
      chunkSize: this.#wire.chunkSize,
      maxQueuedBytes: this.#wire.maxQueuedBytes,
      maxQueuedMessages: this.#wire.maxQueuedMessages,
      heartbeatIntervalMs: 0,
      deadAfterMs: this.#idleTimeoutMs,
      clock: this.#clock,
      logger: this.#logger,
    });
    const s = new ServerSessionImpl(ch, { maxMessageSize: this.#wire.maxMessageSize }, this.#logger);
    this.#sessions.add(s);
    s.on('close', (err) => {
      this.#sessions.delete(s);
      this.#logger.debug({ id: s.id, err: err?.code }, 'session closed');
    });
    this.emit('session', s);
  }

  async leave(opts: SessionLeaveOptions = {}): Promise<void> {
    this.#stopped = true;
    const listener = this.#listener;
    if (listener) await listener.close();
    await Promise.all(
      [...this.#sessions].map(async (s) => {
        try {
          const cookie = opts.cookieOf?.(s);
          if (cookie) s.sendCookie(cookie);
          // The card right before a graceful close tells the PU this PE leaves (not dies).
          s.sendBusinessCard(opts.handle ?? new Uint8Array(0), opts.elements ?? []);
        } catch (err) {
          this.#logger.debug({ id: s.id, err: (err as Error).message }, 'leaving notice not sent');
        }
        await s.close();
      }),
    );
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    const listener = this.#listener;
    if (listener) await listener.close();
    await Promise.all([...this.#sessions].map((s) => s.close()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

export function createSessionServer(init: SessionServerInit, components: SessionServerComponents = {}): SessionServer {
  return new SessionServerImpl(init, components);
}
