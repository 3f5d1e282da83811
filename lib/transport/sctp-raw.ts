/**
 * sctp:// on raw IPv4 (protocol 132), through the raw-socket package, as root.
 *
 * Every raw socket on a host sees every SCTP packet, so processes must agree
 * on who owns a port: a site holds a lock for its address and port, an
 * abstract Unix socket named after them, that the kernel frees when the
 * process dies (kill -9 included). A process ignores packets for ports it
 * does not own, except an INIT for a port nobody on the host holds, which it
 * answers with an ABORT as a host's SCTP stack would: a connect to a closed
 * port fails at once instead of retrying INITs.
 */
import { createSocket as createUdpSocket } from 'node:dgram';
import { createRequire } from 'node:module';
import { createServer, isIP, type Server } from 'node:net';
import type { RSerPoolError } from '../errors.js';
import type { Logger } from '../logger.js';
import { AddressInUseError, TransportError } from './errors.js';
import { SctpUnavailableError } from './sctp-errors.js';
import { CHUNK, Packet, abortForInit, isInit, type SctpPacket } from './sctp-package.js';
import { SOCKET_BUFFER, SctpSite, isLoopback, loopbackPmtu, type SiteInit } from './sctp-site.js';
import type { Endpoint } from './types.js';

const require = createRequire(import.meta.url);

interface RawSocket {
  on(event: 'message', fn: (buffer: Buffer, source: string) => void): void;
  on(event: 'error', fn: (err: Error) => void): void;
  send(buffer: Buffer, offset: number, length: number, address: string, after: (err: Error | null, bytes: number) => void): void;
  setOption(level: number, option: number, value: number): void;
  close(): void;
}

interface RawSocketModule {
  createSocket(options: { addressFamily: number; protocol: number; bufferSize: number }): RawSocket;
  AddressFamily: { IPv4: number };
  SocketLevel: { IPPROTO_IP: number; SOL_SOCKET: number };
  SocketOption: { IP_HDRINCL: number; SO_RCVBUF: number; SO_SNDBUF: number };
}

const IPPROTO_SCTP = 132;
const WILDCARD = '0.0.0.0';
const EPHEMERAL = { first: 49_152, last: 65_535 } as const;
/** An SCTP packet in one IPv4 packet on a 1,500-byte path (the package counts the IP header in its PMTU). */
const RAW_PMTU = 1_500;

function loadRawSocket(): RawSocketModule {
  try {
    return require('raw-socket') as RawSocketModule;
  } catch (err) {
    throw new SctpUnavailableError('sctp:// needs the raw-socket package (a native module; npm install raw-socket) — sctp+udp:// needs nothing', {
      cause: err,
    });
  }
}

/** The abstract Unix socket that says "this process owns SCTP address:port" (Linux frees it when the process dies). */
function lockName(address: string, port: number): string {
  return `\0rserpool-sctp-${address}-${port}`;
}

/** Takes the lock, or undefined when another socket (this process or another) holds it. */
function tryLock(address: string, port: number): Promise<Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') resolve(undefined);
      else reject(new TransportError(`sctp:// port lock ${address}:${port}: ${err.message}`, { cause: err }));
    });
    server.listen({ path: lockName(address, port) }, () => {
      server.unref();
      resolve(server);
    });
  });
}

/** True when no process on this host owns address:port (taken and let go at once). */
async function isFree(address: string, port: number): Promise<boolean> {
  const lock = await tryLock(address, port);
  lock?.close();
  return lock !== undefined;
}

/** The source address the kernel routes from towards `dst`. */
function sourceAddressFor(dst: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createUdpSocket('udp4');
    s.once('error', (err) => {
      s.close();
      reject(new TransportError(`sctp:// no route to ${dst}: ${err.message}`, { cause: err }));
    });
    s.connect(9, dst, () => {
      const { address } = s.address();
      s.close();
      resolve(address);
    });
  });
}

/** Writes a dotted-quad IPv4 address (checked by ipv4() or given by the kernel) as 4 bytes, without splitting strings per packet. */
function writeIpv4(out: Buffer, offset: number, address: string): void {
  let octet = 0;
  let at = offset;
  for (let i = 0; i < address.length; i++) {
    const c = address.charCodeAt(i);
    if (c === 0x2e) {
      out[at++] = octet;
      octet = 0;
    } else octet = octet * 10 + c - 0x30;
  }
  out[at] = octet;
}

/**
 * An IPv4 packet around an SCTP packet, in one buffer: a 20-byte header the
 * kernel completes with the checksum, the id and (when 0.0.0.0) the source
 * (raw(7), IP_HDRINCL).
 */
function ipPacket(src: string, dst: string, sctp: Buffer): Buffer {
  const p = Buffer.allocUnsafe(20 + sctp.length);
  p.fill(0, 0, 20);
  p[0] = 0x45;
  p.writeUInt16BE(20 + sctp.length, 2);
  p[8] = 64;
  p[9] = IPPROTO_SCTP;
  writeIpv4(p, 12, src);
  writeIpv4(p, 16, dst);
  sctp.copy(p, 20);
  return p;
}

/** The process's one raw SCTP socket, shared by its sites; closed when the last site goes. */
class RawNetwork {
  static #instance: RawNetwork | undefined;
  readonly #socket: RawSocket;
  readonly #sites = new Map<string, RawSite>();
  readonly #logger: Logger;

  static get(logger: Logger): RawNetwork {
    RawNetwork.#instance ??= new RawNetwork(logger);
    return RawNetwork.#instance;
  }

  private constructor(logger: Logger) {
    const raw = loadRawSocket();
    this.#logger = logger;
    try {
      this.#socket = raw.createSocket({ addressFamily: raw.AddressFamily.IPv4, protocol: IPPROTO_SCTP, bufferSize: 65_535 });
    } catch (err) {
      throw new SctpUnavailableError(
        `sctp:// cannot open a raw IP socket (${err instanceof Error ? err.message : String(err)}): it needs root or CAP_NET_RAW — sctp+udp:// does not`,
        { cause: err },
      );
    }
    const { SocketLevel: L, SocketOption: O } = raw;
    this.#socket.setOption(L.IPPROTO_IP, O.IP_HDRINCL, 1);
    this.#socket.setOption(L.SOL_SOCKET, O.SO_RCVBUF, SOCKET_BUFFER);
    this.#socket.setOption(L.SOL_SOCKET, O.SO_SNDBUF, SOCKET_BUFFER);
    this.#socket.on('message', (buffer, source) => this.#onMessage(buffer, source));
    this.#socket.on('error', (err) => this.#logger.warn({ err: err.message }, 'sctp:// raw socket error'));
  }

  site(address: string, port: number): RawSite | undefined {
    return this.#sites.get(`${address}|${port}`);
  }

  add(site: RawSite): void {
    this.#sites.set(`${site.address}|${site.port}`, site);
  }

  remove(site: RawSite): void {
    const key = `${site.address}|${site.port}`;
    if (this.#sites.get(key) === site) this.#sites.delete(key);
    this.closeIfUnused();
  }

  closeIfUnused(): void {
    if (this.#sites.size === 0 && RawNetwork.#instance === this) {
      RawNetwork.#instance = undefined;
      this.#socket.close();
    }
  }

  send(src: string, dst: string, sctp: Buffer, callback?: (err?: Error | null) => void): void {
    const packet = ipPacket(src, dst, sctp);
    this.#socket.send(packet, 0, packet.length, dst, (err) => callback?.(err));
  }

  #onMessage(buffer: Buffer, source: string): void {
    if (buffer.length < 20 + 12 || buffer[0]! >> 4 !== 4) return;
    const ihl = (buffer[0]! & 0x0f) * 4;
    const total = Math.min(buffer.length, buffer.readUInt16BE(2));
    if (total < ihl + 12) return;
    const dst = `${buffer[16]}.${buffer[17]}.${buffer[18]}.${buffer[19]}`;
    const port = buffer.readUInt16BE(ihl + 2);
    const site = this.site(dst, port) ?? this.site(WILDCARD, port);
    // Most packets on a busy host belong to other processes: look no further unless one is a lone INIT.
    if (!site && !(buffer[ihl + 12] === CHUNK.INIT && buffer.readUInt32BE(ihl + 4) === 0)) return;
    // The socket reuses its receive buffer: the package keeps chunk slices, so copy.
    const packet = Packet.fromBuffer(Buffer.from(buffer.subarray(ihl, total)));
    if (site) site.deliverFrom(packet, source, dst);
    else if (packet && isInit(packet) && !packet.checksum_error) void this.#refuseIfUnowned(packet, source, dst);
  }

  /** An INIT for a port no process here owns: answer for the host with an ABORT. */
  async #refuseIfUnowned(packet: SctpPacket, source: string, dst: string): Promise<void> {
    try {
      if (!(await isFree(dst, packet.dst_port)) || !(await isFree(WILDCARD, packet.dst_port))) return;
      const abort = abortForInit(packet);
      if (abort) this.send(dst, source, abort.toBuffer());
    } catch (err) {
      this.#logger.debug({ err: (err as Error).message }, 'sctp:// could not check a port lock');
    }
  }
}

interface RawSiteInit extends SiteInit {
  network: RawNetwork;
  /** The bound address (0.0.0.0 for any). */
  address: string;
  lock: Server;
}

class RawSite extends SctpSite {
  readonly address: string;
  readonly #network: RawNetwork;
  readonly #lock: Server;
  /** Our address as each peer addressed us (a wildcard site answers from it). */
  readonly #localFor = new Map<string, string>();

  constructor(init: RawSiteInit) {
    super(init);
    this.address = init.address;
    this.#network = init.network;
    this.#lock = init.lock;
    init.network.add(this);
  }

  deliverFrom(packet: SctpPacket | false, source: string, dst: string): void {
    if (this.address === WILDCARD && !this.problemWith(packet)) this.#localFor.set(source, dst);
    this.deliver(packet, source, source);
  }

  override sendPacket(dst: string, packet: SctpPacket, callback?: (err?: Error | null) => void): void {
    if (this.isClosed) {
      callback?.();
      return;
    }
    const src = this.address !== WILDCARD ? this.address : (this.#localFor.get(dst) ?? WILDCARD);
    this.#network.send(src, dst, packet.toBuffer(), callback);
  }

  override remoteOf(address: string, port: number): Endpoint {
    return Object.freeze({ host: address, port });
  }

  override pmtuFor(remote: Endpoint): number {
    return isLoopback(remote.host) ? loopbackPmtu(RAW_PMTU) : RAW_PMTU;
  }

  override addressFor(remote: Endpoint): string {
    return remote.host;
  }

  protected override closeIo(): void {
    this.#network.remove(this);
    this.#lock.close();
  }
}

function ipv4(host: string, what: string): void {
  if (isIP(host) !== 4) throw new SctpUnavailableError(`${what}: sctp:// (raw IP) takes an IPv4 address, not '${host}' — use sctp+udp:// for IPv6 or names`);
}

async function ephemeralLock(): Promise<{ port: number; lock: Server }> {
  const span = EPHEMERAL.last - EPHEMERAL.first + 1;
  for (let attempt = 0; attempt < 64; attempt++) {
    const port = EPHEMERAL.first + Math.floor(Math.random() * span);
    const lock = await tryLock(WILDCARD, port);
    if (lock) return { port, lock };
  }
  throw new AddressInUseError('sctp:// found no free ephemeral port in 64 tries');
}

/** A listener's site on host:port (port 0: any free port); reuses a site of this process whose listener closed. */
export async function listenRawSite(host: string, port: number, init: Omit<SiteInit, 'port' | 'local'>): Promise<SctpSite> {
  ipv4(host, `listen sctp://${host}:${port}`);
  const network = RawNetwork.get(init.logger);
  try {
    const lingering = port === 0 ? undefined : network.site(host, port);
    if (lingering && !lingering.isClosed) return lingering;
    let lock: Server | undefined;
    if (port === 0) ({ port, lock } = await ephemeralLock());
    else {
      lock = await tryLock(host, port);
      // A specific address also conflicts with a wildcard owner of the port.
      if (lock && host !== WILDCARD && !(await isFree(WILDCARD, port))) {
        lock.close();
        lock = undefined;
      }
    }
    if (!lock) throw new AddressInUseError(`listen sctp://${host}:${port}: address in use (another process owns the SCTP port)`);
    return new RawSite({ ...init, network, address: host, lock, port, local: { host, port } });
  } finally {
    network.closeIfUnused();
  }
}

/** A client site from an ephemeral port, on the address the kernel routes from towards `remote`. */
export function connectRawSite(
  remote: Endpoint,
  init: Omit<SiteInit, 'port' | 'local'>,
  done: (err: RSerPoolError | undefined, site?: SctpSite) => void,
): () => void {
  let cancelled = false;
  void (async () => {
    try {
      ipv4(remote.host, `connect sctp://${remote.host}:${remote.port}`);
      const network = RawNetwork.get(init.logger);
      try {
        const src = await sourceAddressFor(remote.host);
        const { port, lock } = await ephemeralLock();
        if (cancelled) {
          lock.close();
          return;
        }
        done(undefined, new RawSite({ ...init, network, address: src, lock, port, local: { host: src, port } }));
      } finally {
        network.closeIfUnused();
      }
    } catch (err) {
      if (!cancelled) done(err as RSerPoolError);
    }
  })();
  return () => {
    cancelled = true;
  };
}
