/**
 * Typed access to the parts of the `sctp` npm package that sctp:// and
 * sctp+udp:// drive: the endpoint (INIT/cookie handling), the association
 * (RFC 4960 state machine, retransmission, reassembly) and the packet codec.
 * Its sockets and its IP/UDP transport are not used: sctp-site.ts and
 * sctp-raw.ts move the packets instead (see patches/README.md for why).
 */
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** An SCTP common header and its chunks, undecoded. */
export interface SctpPacket {
  src_port: number;
  dst_port: number;
  v_tag: number;
  chunks?: Buffer[];
  checksum_error?: boolean;
  length_error?: boolean;
  toBuffer(): Buffer;
}

interface SctpPacketClass {
  new (headers: { src_port: number; dst_port: number; v_tag: number }, chunks: Buffer[]): SctpPacket;
  fromBuffer(buffer: Buffer): SctpPacket | false;
}

/** What an endpoint calls to put a packet on the wire; `dst` is the association's remote address. */
interface PacketSink {
  sendPacket(src: string | undefined, dst: string, packet: SctpPacket, callback?: (err?: Error | null) => void): boolean | undefined;
  unallocate(port: number): void;
}

/** A queued outbound chunk (the association bundles them on the next tick). */
interface QueuedChunk {
  chunkType: string;
  size: number;
}

export interface SctpAssociation extends EventEmitter {
  state: string;
  OS: number;
  MIS: number;
  PMTU: number;
  cwnd: number;
  ssthresh: number;
  flightsize: number;
  peer_rwnd: number;
  sack_timeout: number;
  remoteAddress: string;
  remotePort: number;
  queue: QueuedChunk[];
  endpoint?: SctpEndpoint;
  SEND(buffer: Buffer, options: { stream_id: number; ppid: number }, callback: (err?: Error) => void): boolean;
  RECEIVE(): (Buffer & { ppid?: number }) | undefined;
  SHUTDOWN(callback?: () => void): void;
  ABORT(reason?: Buffer): void;
  _destroy(): void;
}

export interface SctpEndpoint extends EventEmitter {
  localPort: number;
  transport: PacketSink;
  a_rwnd: number;
  MIS: number;
  OS: number;
  associations: SctpAssociation[];
  _cookieInterval: NodeJS.Timeout;
  ASSOCIATE(options: { remoteAddress: string; remotePort: number; OS?: number; MIS?: number }): SctpAssociation;
  DESTROY(): void;
}

interface SctpEndpointClass {
  new (options: { localPort: number; localAddress?: string[]; MIS?: number; OS?: number; a_rwnd?: number }): SctpEndpoint;
}

export const Packet = require('sctp/lib/packet.js') as SctpPacketClass;
export const Endpoint = require('sctp/lib/endpoint.js') as SctpEndpointClass;

/**
 * Whether patches/sctp+1.0.0+*.patch are applied (006 adds _countError). They
 * are applied at install in this repository only: an application that
 * installs rserpool from the registry gets the package as published, which
 * still works, with a 1,500-byte path MTU everywhere (its bundler may overrun
 * the MTU by a chunk, too much for a UDP datagram at 64 KiB) and ~400 round
 * trips/s (see patches/README.md).
 */
export const PACKAGE_PATCHED = typeof (require('sctp/lib/association.js') as { prototype: Record<string, unknown> }).prototype._countError === 'function';

/** Chunk type codes (RFC 4960 section 3.2) the I/O layer looks at before the endpoint does. */
export const CHUNK = { INIT: 1, ABORT: 6 } as const;

/** An ABORT answering an INIT nobody will take: it carries the INIT's initiate tag, T bit clear (RFC 4960 8.4, 5.1). */
export function abortForInit(packet: SctpPacket): SctpPacket | undefined {
  const init = packet.chunks?.[0];
  if (!init || init.length < 8 || init[0] !== CHUNK.INIT || packet.v_tag !== 0) return undefined;
  return new Packet({ src_port: packet.dst_port, dst_port: packet.src_port, v_tag: init.readUInt32BE(4) }, [Buffer.from([CHUNK.ABORT, 0, 0, 4])]);
}

/** True when the packet holds a lone INIT (the only chunk a new association starts with). */
export function isInit(packet: SctpPacket): boolean {
  return packet.v_tag === 0 && packet.chunks?.length === 1 && packet.chunks[0]![0] === CHUNK.INIT;
}
