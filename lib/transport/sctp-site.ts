/**
 * An SCTP site: one endpoint of the `sctp` package (a local port: INIT and
 * cookie handling, its associations) and the packets that reach it. The
 * package's own transport is not used: a site moves packets itself, over one
 * UDP socket (sctp+udp://, here) or the process's raw IP socket (sctp://,
 * sctp-raw.ts). Everything a peer sends passes deliver(), which drops what
 * is malformed and keeps an exception in the package from escaping.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { isIP } from 'node:net';
import type { Logger } from '../logger.js';
import type { RSerPoolError } from '../errors.js';
import { ConnectionRefusedError, ConnectionResetError } from './errors.js';
import { classifySocketError } from './stream.js';
import {
  Endpoint as PackageEndpoint,
  PACKAGE_PATCHED,
  Packet,
  abortForInit,
  isInit,
  type SctpAssociation,
  type SctpEndpoint,
  type SctpPacket,
} from './sctp-package.js';
import type { Endpoint } from './types.js';

export interface SiteInit {
  /** The local SCTP port. */
  port: number;
  /** What connections report as their local end (for a listener, its bound address). */
  local: Endpoint;
  /** Receive window offered to every peer (bytes). */
  rwnd: number;
  /** Inbound and outbound streams asked for. */
  streams: number;
  logger: Logger;
}

/** Called with a new inbound association, before it is up; `remote` is the peer's real address. */
type Acceptor = (site: SctpSite, assoc: SctpAssociation, remote: Endpoint) => void;

/** The path MTU to use on loopback, where a patched package takes 64 KiB packets. */
export function loopbackPmtu(otherwise: number): number {
  return PACKAGE_PATCHED ? LOOPBACK_PMTU : otherwise;
}

/** 127.0.0.0/8 and ::1: the loopback device's MTU is 64 KiB, as path MTU discovery would find. */
export function isLoopback(host: string): boolean {
  return host === '::1' || host === 'localhost' || (isIP(host) === 4 && host.startsWith('127.')) || host.startsWith('::ffff:127.');
}

let warned = false;
function warnUnpatched(logger: Logger): void {
  if (warned) return;
  warned = true;
  logger.warn({}, 'the sctp package is not patched (patches/sctp+1.0.0+*.patch): 1,500-byte packets, slow batching, no retransmission limit');
}

export abstract class SctpSite {
  readonly endpoint: SctpEndpoint;
  readonly local: Endpoint;
  readonly port: number;
  protected readonly logger: Logger;
  /** Takes new associations; while undefined, INITs are answered with an ABORT, as a closed port would be. */
  acceptor: Acceptor | undefined;
  /** Told when the network reports the peer unreachable (a connected UDP socket's ICMP). */
  readonly onUnreachable = new Set<(err: RSerPoolError) => void>();
  #users = 0;
  #closed = false;
  #dropped = 0;
  #lastDropLog = -Infinity;

  constructor(init: SiteInit) {
    this.local = Object.freeze({ ...init.local });
    this.port = init.port;
    this.logger = init.logger;
    if (!PACKAGE_PATCHED) warnUnpatched(this.logger);
    const endpoint = new PackageEndpoint({ localPort: init.port, MIS: init.streams, OS: init.streams, a_rwnd: init.rwnd });
    // Rotates the cookie secret; must not keep the process alive.
    endpoint._cookieInterval.unref();
    endpoint.transport = {
      sendPacket: (_src, dst, packet, callback) => {
        this.sendPacket(dst, packet, callback);
        return true;
      },
      unallocate: () => {},
    };
    endpoint.on('association', (assoc: SctpAssociation) => this.#onAssociation(assoc));
    this.endpoint = endpoint;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** What makes a packet unfit for this site, or undefined. */
  problemWith(packet: SctpPacket | false): string | undefined {
    if (!packet) return 'shorter than an SCTP common header';
    if (packet.checksum_error) return 'CRC32c does not match';
    if (packet.length_error) return 'a chunk runs past the end of the packet';
    if (!packet.chunks?.length) return 'no chunks';
    if (packet.dst_port !== this.port) return `for SCTP port ${packet.dst_port}, not ${this.port}`;
    return undefined;
  }

  /** A packet from `src` (the association address the peer is known by); `from` names the sender in logs. */
  deliver(packet: SctpPacket | false, src: string, from: string): void {
    if (this.#closed) return;
    const problem = this.problemWith(packet);
    if (problem || !packet) {
      this.dropped(problem ?? 'no packet', from);
      return;
    }
    if (!this.acceptor && isInit(packet)) {
      const abort = abortForInit(packet);
      if (abort) this.sendPacket(src, abort);
      return;
    }
    try {
      this.endpoint.emit('packet', packet, src, undefined);
    } catch (err) {
      // The package threw on what a peer sent: drop that packet, keep every association.
      this.dropped(`the SCTP stack failed on it: ${err instanceof Error ? err.message : String(err)}`, from);
    }
  }

  /** Anyone can send any number of bad packets: they are counted and logged at most every 10 s. */
  protected dropped(reason: string, from: string): void {
    this.#dropped++;
    const now = Date.now();
    if (now - this.#lastDropLog < 10_000) return;
    this.#lastDropLog = now;
    this.logger.warn({ port: this.port, from, reason, dropped: this.#dropped }, 'dropped SCTP packets');
    this.#dropped = 0;
  }

  abstract sendPacket(dst: string, packet: SctpPacket, callback?: (err?: Error | null) => void): void;
  /** The peer's real transport address for an association's remote address. */
  abstract remoteOf(assocAddress: string, port: number): Endpoint;
  /** Path MTU towards `remote` (SCTP packet bytes). */
  abstract pmtuFor(remote: Endpoint): number;
  /** The remote address an outgoing association to `remote` is known by. */
  abstract addressFor(remote: Endpoint): string;
  protected abstract closeIo(): void;

  retain(): void {
    this.#users++;
  }

  /** Drops one user; the site closes once it has neither users nor an acceptor. */
  release(): void {
    this.#users--;
    this.closeIfIdle();
  }

  closeIfIdle(): void {
    if (this.#users <= 0 && !this.acceptor) this.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const assoc of [...this.endpoint.associations]) assoc._destroy();
    this.endpoint.DESTROY();
    this.closeIo();
  }

  protected unreachable(err: RSerPoolError): void {
    for (const fn of [...this.onUnreachable]) fn(err);
  }

  #onAssociation(assoc: SctpAssociation): void {
    const accept = this.acceptor;
    const remote = this.remoteOf(assoc.remoteAddress, assoc.remotePort);
    if (accept) {
      accept(this, assoc, remote);
      return;
    }
    // The acceptor went between INIT and COOKIE ECHO: refuse once the peer's tag is known.
    assoc.once('COMMUNICATION UP', () => assoc.ABORT());
  }
}

/** Node's UDP sockets, as sites of sctp+udp:// (RFC 6951 encapsulation; SCTP port = UDP port). */
interface UdpPeer {
  readonly alias: string;
  readonly host: string;
  readonly port: number;
  lastSeen: number;
}

const PEER_IDLE_MS = 120_000;
/** An SCTP packet in one UDP datagram on a 1,500-byte path: IPv4 20 or IPv6 40, UDP 8. */
const UDP_PMTU = { 4: 1_472, 6: 1_452 } as const;
/** Loopback: the largest UDP payload, less room for the SCTP packet's rounding. */
const LOOPBACK_PMTU = 65_000;

interface UdpSiteInit extends SiteInit {
  socket: UdpSocket;
  /** A client site: the socket is connected to this peer and hears only from it. */
  peer?: Endpoint;
}

/**
 * One UDP socket serving every peer that talks to it: each peer (address and
 * UDP port) is known to the endpoint by an alias address from 240.0.0.0/4, so
 * the package's per-address association lookup tells peers apart even when
 * two of them use the same SCTP port.
 */
export class UdpSite extends SctpSite {
  readonly socket: UdpSocket;
  readonly #byKey = new Map<string, UdpPeer>();
  readonly #byAlias = new Map<string, UdpPeer>();
  readonly #connected: UdpPeer | undefined;
  readonly #family: 4 | 6;
  #nextAlias = 0;
  #sweep: NodeJS.Timeout | undefined;
  /** Called once the socket is closed, to forget the site. */
  onClose: (() => void) | undefined;

  constructor(init: UdpSiteInit) {
    super(init);
    this.socket = init.socket;
    this.#family = this.socket.address().family === 'IPv6' ? 6 : 4;
    if (init.peer) this.#connected = this.#peer(init.peer.host, init.peer.port);
    this.socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => this.#onMessage(msg, rinfo));
    this.socket.on('error', (err) => this.#onError(err));
    if (!init.peer) {
      this.#sweep = setInterval(() => this.#sweepPeers(), PEER_IDLE_MS / 2);
      this.#sweep.unref();
    }
  }

  override sendPacket(dst: string, packet: SctpPacket, callback?: (err?: Error | null) => void): void {
    const peer = this.#byAlias.get(dst);
    if (this.isClosed || !peer) {
      callback?.();
      return;
    }
    const bytes = packet.toBuffer();
    try {
      // The package's callback runs now: the datagram is queued once send() returns (waiting for
      // dgram's callback cost a tick per packet). A connected socket still listens for ICMP errors,
      // which a send may report instead of the receive side.
      if (this.#connected) this.socket.send(bytes, this.#onSent);
      else this.socket.send(bytes, peer.port, peer.host);
    } catch (err) {
      callback?.(err as Error);
      return;
    }
    callback?.();
  }

  override remoteOf(alias: string, port: number): Endpoint {
    const peer = this.#byAlias.get(alias);
    return Object.freeze({ host: peer?.host ?? alias, port: peer?.port ?? port });
  }

  override pmtuFor(remote: Endpoint): number {
    return isLoopback(remote.host) ? loopbackPmtu(UDP_PMTU[this.#family]) : UDP_PMTU[this.#family];
  }

  override addressFor(remote: Endpoint): string {
    return this.#connected?.alias ?? this.#peer(remote.host, remote.port).alias;
  }

  protected override closeIo(): void {
    if (this.#sweep) clearInterval(this.#sweep);
    try {
      this.socket.close();
    } catch {
      // already closed
    }
    this.onClose?.();
  }

  #peer(host: string, port: number): UdpPeer {
    const key = `${host}|${port}`;
    let peer = this.#byKey.get(key);
    if (!peer) {
      let alias: string;
      do {
        const n = this.#nextAlias++ & 0xfffffff;
        alias = `${240 | (n >>> 24)}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
      } while (this.#byAlias.has(alias));
      peer = { alias, host, port, lastSeen: Date.now() };
      this.#byKey.set(key, peer);
      this.#byAlias.set(alias, peer);
    }
    return peer;
  }

  #onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    const packet = Packet.fromBuffer(msg);
    const from = `${rinfo.address}:${rinfo.port}`;
    const problem = this.problemWith(packet);
    if (problem) {
      // Before an alias is made for the sender: garbage must not fill the peer table.
      this.dropped(problem, from);
      return;
    }
    const peer = this.#connected ?? this.#peer(rinfo.address, rinfo.port);
    peer.lastSeen = Date.now();
    this.deliver(packet, peer.alias, from);
  }

  readonly #onSent = (err: Error | null): void => {
    if (err) this.#onError(err);
  };

  #onError(err: Error): void {
    const code = (err as { code?: string }).code;
    if (this.#connected && code === 'ECONNREFUSED') {
      // ICMP port unreachable: nothing (any longer) at the peer's UDP port.
      const where = `${this.#connected.host}:${this.#connected.port}`;
      this.unreachable(new ConnectionRefusedError(`sctp+udp: nothing listens at ${where} (ICMP port unreachable)`, { cause: err }));
      return;
    }
    this.logger.warn({ port: this.port, err: err.message }, 'sctp+udp socket error');
    if (this.#connected) this.unreachable(new ConnectionResetError(`sctp+udp: ${err.message}`, { cause: err }));
  }

  /** Forgets peers no association uses that have been quiet for a while (handshakes that never finished, OOTB senders). */
  #sweepPeers(): void {
    const inUse = new Set(this.endpoint.associations.map((a) => a.remoteAddress));
    const cutoff = Date.now() - PEER_IDLE_MS;
    for (const [key, peer] of this.#byKey) {
      if (peer.lastSeen < cutoff && !inUse.has(peer.alias)) {
        this.#byKey.delete(key);
        this.#byAlias.delete(peer.alias);
      }
    }
  }
}

/** UDP sites of this process by bound address, so a listener can reopen a port its old connections still use. */
const udpSites = new Map<string, UdpSite>();

function siteKey(host: string, port: number): string {
  return `${host}|${port}`;
}

export function findUdpSite(host: string, port: number): UdpSite | undefined {
  const site = udpSites.get(siteKey(host, port));
  return site && !site.isClosed ? site : undefined;
}

/** Binds a UDP socket for a listener; AddressInUseError when another socket has the port. */
export function bindUdpSite(host: string, port: number, init: Omit<SiteInit, 'port' | 'local'>): Promise<UdpSite> {
  const type = isIP(host) === 6 ? 'udp6' : 'udp4';
  const socket = createSocket({ type, recvBufferSize: SOCKET_BUFFER, sendBufferSize: SOCKET_BUFFER });
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      socket.close();
      reject(classifySocketError(err, `listen sctp+udp://${host}:${port}`));
    };
    socket.once('error', onError);
    socket.bind({ address: host, port, exclusive: true }, () => {
      socket.off('error', onError);
      const a = socket.address();
      const site = new UdpSite({ ...init, socket, port: a.port, local: { host: a.address, port: a.port } });
      const key = siteKey(a.address, a.port);
      udpSites.set(key, site);
      site.onClose = () => {
        if (udpSites.get(key) === site) udpSites.delete(key);
      };
      resolve(site);
    });
  });
}

/** Kernel socket buffers: room for a few windows of every peer at once (the kernel caps it at rmem_max/wmem_max). */
export const SOCKET_BUFFER = 4 * 1024 * 1024;

/**
 * A client site: its own UDP socket from an ephemeral port (so processes on
 * one host never share a port), connected to the peer so that an ICMP port
 * unreachable comes back as ECONNREFUSED. `cancel` undoes a pending call.
 */
export function connectUdpSite(
  remote: Endpoint,
  init: Omit<SiteInit, 'port' | 'local'>,
  done: (err: RSerPoolError | undefined, site?: UdpSite) => void,
): () => void {
  const type = isIP(remote.host) === 6 ? 'udp6' : 'udp4';
  const socket = createSocket({ type, recvBufferSize: SOCKET_BUFFER, sendBufferSize: SOCKET_BUFFER });
  let cancelled = false;
  const onError = (err: Error): void => {
    if (cancelled) return;
    cancelled = true;
    socket.close();
    done(classifySocketError(err, `connect sctp+udp://${remote.host}:${remote.port}`));
  };
  socket.once('error', onError);
  socket.connect(remote.port, remote.host, () => {
    if (cancelled) return;
    socket.off('error', onError);
    const a = socket.address();
    done(undefined, new UdpSite({ ...init, socket, port: a.port, local: { host: a.address, port: a.port }, peer: remote }));
  });
  return () => {
    if (cancelled) return;
    cancelled = true;
    socket.close();
  };
}
