import { connect as netConnect, createServer, type Socket } from 'node:net';
import { DEFAULT_MAX_MESSAGE_SIZE } from '../../protocols/framing.js';
import { systemClock } from '../clock.js';
import { silentLogger } from '../logger.js';
import { BadUrlError } from './errors.js';
import { DEFAULTS, cancellable } from './internal.js';
import { classifySocketError, listenServer, wrapSocket, type StreamConnectionInit } from './stream.js';
import { PPID } from './types.js';
import { parseTransportUrl } from './url.js';
import type { Connection, ConnectOptions, Listener, ListenOptions, MessageTransport, TransportComponents, TransportInit, TransportUrl } from './types.js';

export type TcpTransportInit = TransportInit;

/** Resolved settings of a stream transport (tcp:// or tls://). */
export interface StreamSettings {
  maxMessageSize: number;
  ppid: number;
  connectTimeoutMs: number;
  closeTimeoutMs: number;
  maxBufferedBytes: number;
  partialMessageTimeoutMs: number;
}

export function streamSettings(init: TransportInit): StreamSettings {
  return {
    maxMessageSize: init.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
    ppid: init.ppid ?? PPID.ASAP,
    connectTimeoutMs: init.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
    closeTimeoutMs: init.closeTimeoutMs ?? DEFAULTS.closeTimeoutMs,
    maxBufferedBytes: init.maxBufferedBytes ?? DEFAULTS.maxBufferedBytes,
    partialMessageTimeoutMs: init.partialMessageTimeoutMs ?? DEFAULTS.partialMessageTimeoutMs,
  };
}

export function urlFor(scheme: 'tcp' | 'tls', input: TransportUrl | string): TransportUrl {
  const url = parseTransportUrl(input);
  if (url.scheme !== scheme) throw new BadUrlError(url.href, `this transport serves ${scheme}://, not ${url.scheme}://`);
  return url;
}

/**
 * ASAP/ENRP messages back to back on a TCP stream, framed by their own
 * length field. One ppid per connection: the stream has nowhere to put one.
 */
class TcpTransport implements MessageTransport {
  readonly scheme = 'tcp' as const;
  readonly #settings: StreamSettings;
  readonly #components: Required<TransportComponents>;
  #seq = 0;

  constructor(init: TcpTransportInit, components: TransportComponents) {
    this.#settings = streamSettings(init);
    this.#components = {
      clock: components.clock ?? systemClock,
      logger: (components.logger ?? silentLogger).child({ component: 'transport-tcp' }),
    };
  }

  #connInit(ppid: number | undefined, partialMessageTimeoutMs?: number): StreamConnectionInit {
    return {
      scheme: 'tcp',
      id: `tcp-${++this.#seq}`,
      ppid: ppid ?? this.#settings.ppid,
      maxMessageSize: this.#settings.maxMessageSize,
      maxBufferedBytes: this.#settings.maxBufferedBytes,
      closeTimeoutMs: this.#settings.closeTimeoutMs,
      partialMessageTimeoutMs: partialMessageTimeoutMs ?? this.#settings.partialMessageTimeoutMs,
      clock: this.#components.clock,
      logger: this.#components.logger,
    };
  }

  async connect(input: TransportUrl | string, opts: ConnectOptions = {}): Promise<Connection> {
    const url = urlFor('tcp', input);
    const what = `connect ${url.href}`;
    const timeoutMs = opts.timeoutMs ?? this.#settings.connectTimeoutMs;
    return cancellable<Connection>({ signal: opts.signal, timeoutMs, clock: this.#components.clock, what }, (resolve, reject) => {
      const socket: Socket = netConnect({ host: url.host, port: url.port, noDelay: true });
      const onError = (err: Error): void => reject(classifySocketError(err, what));
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve(wrapSocket(socket, this.#connInit(opts.ppid)));
      });
      return () => socket.destroy();
    });
  }

  async listen(input: TransportUrl | string, opts: ListenOptions = {}): Promise<Listener> {
    const url = urlFor('tcp', input);
    const server = createServer({ noDelay: true });
    const listener = await listenServer(server, url, { signal: opts.signal, ...this.#components });
    server.on('connection', (socket) => {
      listener.accept(wrapSocket(socket, this.#connInit(opts.ppid, opts.partialMessageTimeoutMs)));
    });
    return listener;
  }
}

export function createTcpTransport(init: TcpTransportInit = {}, components: TransportComponents = {}): MessageTransport {
  return new TcpTransport(init, components);
}
