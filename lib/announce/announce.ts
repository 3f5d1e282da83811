/**
 * ASAP_SERVER_ANNOUNCE over UDP multicast (RFC 5352 3.6): the registrar
 * sends its id and ASAP addresses every T6-serverAnnounce; PEs and PUs
 * listen to find registrars. Multicast goes out on one configured interface
 * (default loopback) with TTL 1.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { EventEmitter } from 'eventemitter3';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import { silentLogger, type Logger } from '../logger.js';
import { decodeAsapMessage, encodeAsapMessage } from '../../protocols/asap/codec.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import type { TransportAddress } from '../../protocols/parameters/types.js';
import type { Endpoint, Events } from '../transport/index.js';
import { AnnounceError } from './errors.js';

export const DEFAULT_ANNOUNCE_GROUP = '239.0.0.50';
export const DEFAULT_ANNOUNCE_PORT = 3863;
export const DEFAULT_ANNOUNCE_INTERFACE = '127.0.0.1';

interface AnnouncerInit {
  group: string;
  port: number;
  interface: string;
  ttl: number;
  intervalMs: number;
  serverId: number;
  transports: () => TransportAddress[];
}

export interface Announcer {
  start(): Promise<void>;
  stop(): Promise<void>;
}

function bindSocket(socket: Socket, port: number, address?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ port, address, exclusive: false }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

function closeSocket(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve();
    }
  });
}

export function createAnnouncer(init: AnnouncerInit, components: { clock?: Clock; logger?: Logger } = {}): Announcer {
  const clock = components.clock ?? systemClock;
  const logger = (components.logger ?? silentLogger).child({ component: 'registrar-announce' });
  let socket: Socket | undefined;
  let timer: TimerHandle | undefined;
  let running = false;

  const tick = (): void => {
    timer = undefined;
    if (!running || !socket) return;
    const bytes = encodeAsapMessage({ type: AsapMessageType.ServerAnnounce, serverId: init.serverId, transports: init.transports() });
    socket.send(bytes, init.port, init.group, (err) => {
      if (err) logger.warn({ err: err.message }, 'server announce not sent');
    });
    timer = clock.setTimeout(tick, init.intervalMs);
  };

  return {
    async start() {
      if (running) return;
      const s = createSocket({ type: 'udp4', reuseAddr: true });
      s.on('error', (err) => logger.warn({ err: err.message }, 'announce socket error'));
      try {
        await bindSocket(s, 0, init.interface);
        s.setMulticastInterface(init.interface);
        s.setMulticastTTL(init.ttl);
        s.setMulticastLoopback(true);
      } catch (err) {
        await closeSocket(s);
        throw new AnnounceError(`cannot send multicast on ${init.interface}`, { cause: err });
      }
      socket = s;
      running = true;
      tick();
    },
    async stop() {
      running = false;
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
      const s = socket;
      socket = undefined;
      if (s) await closeSocket(s);
    },
  };
}

// --- listening side (PE and PU libraries) -----------------------------------

export interface AnnounceListenInit {
  group?: string;
  /** Default 3863; 0 picks a free port (tests point the registrar's announce there). */
  port?: number;
  /** Interface joined. Default 127.0.0.1. */
  interface?: string;
  /** A registrar not heard for this long is forgotten. Default 5,000 ms. */
  maxAgeMs?: number;
  /** Scheme of the URLs made from announced TCP addresses. Default 'tcp'. */
  scheme?: 'tcp' | 'tls';
}

export interface RegistrarAnnouncement {
  serverId: number;
  transports: TransportAddress[];
  /** `tcp://addr:port` per announced TCP address; unspecified addresses replaced by the sender's. */
  urls: string[];
  from: Endpoint;
  /** Clock time it was last heard. */
  heardAt: number;
}

export interface AnnounceListenerEvents {
  announce: (a: RegistrarAnnouncement) => void;
}

export interface AnnounceListener extends Events<AnnounceListenerEvents> {
  /** The bound UDP port. */
  readonly port: number;
  /** Registrars heard within maxAgeMs, most recently heard first. */
  registrars(): RegistrarAnnouncement[];
  /** Resolves at once: listenAnnounces() returns it listening. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The same as stop(). */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function urlsOf(transports: TransportAddress[], from: string, scheme: string): string[] {
  const out: string[] = [];
  for (const t of transports) {
    if (t.protocol !== 'tcp') continue;
    for (let a of t.addresses) {
      if (a === '0.0.0.0' || a === '::') a = from;
      out.push(`${scheme}://${isIP(a) === 6 ? `[${a}]` : a}:${t.port}`);
    }
  }
  return out;
}

export async function listenAnnounces(init: AnnounceListenInit = {}, components: { clock?: Clock; logger?: Logger } = {}): Promise<AnnounceListener> {
  const clock = components.clock ?? systemClock;
  const logger = (components.logger ?? silentLogger).child({ component: 'announce-listener' });
  const group = init.group ?? DEFAULT_ANNOUNCE_GROUP;
  const iface = init.interface ?? DEFAULT_ANNOUNCE_INTERFACE;
  const maxAgeMs = init.maxAgeMs ?? 5_000;
  const scheme = init.scheme ?? 'tcp';
  const events = new EventEmitter<AnnounceListenerEvents>();
  const heard = new Map<number, RegistrarAnnouncement>();
  const socket = createSocket({ type: 'udp4', reuseAddr: true });
  socket.on('error', (err) => logger.warn({ err: err.message }, 'announce listener socket error'));
  try {
    await bindSocket(socket, init.port ?? DEFAULT_ANNOUNCE_PORT);
    socket.addMembership(group, iface);
  } catch (err) {
    await closeSocket(socket);
    throw new AnnounceError(`cannot join ${group} on ${iface}`, { cause: err });
  }
  const port = socket.address().port;
  socket.on('message', (msg, rinfo) => {
    // Port 0 is no sender's port: a forged source, dropped like undecodable input.
    if (rinfo.port === 0) return;
    try {
      const m = decodeAsapMessage(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength));
      if (m.type !== AsapMessageType.ServerAnnounce || m.serverId === 0) return;
      const a: RegistrarAnnouncement = {
        serverId: m.serverId,
        transports: m.transports,
        urls: urlsOf(m.transports, rinfo.address, scheme),
        from: { host: rinfo.address, port: rinfo.port },
        heardAt: clock.now(),
      };
      heard.delete(a.serverId);
      heard.set(a.serverId, a);
      events.emit('announce', a);
    } catch (err) {
      logger.debug({ err: (err as Error).message, from: rinfo.address }, 'undecodable announce dropped');
    }
  });
  const close = async (): Promise<void> => {
    events.removeAllListeners();
    await closeSocket(socket);
  };
  return {
    port,
    on: events.on.bind(events),
    once: events.once.bind(events),
    off: events.off.bind(events),
    listenerCount: events.listenerCount.bind(events),
    registrars() {
      const now = clock.now();
      const out: RegistrarAnnouncement[] = [];
      for (const [id, a] of heard) {
        if (now - a.heardAt > maxAgeMs) heard.delete(id);
        else out.push(a);
      }
      return out.reverse();
    },
    start: () => Promise.resolve(),
    stop: close,
    close,
    [Symbol.asyncDispose]: close,
  };
}
