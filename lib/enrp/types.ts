import type { Events } from '../events.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { Handlespace, PoolElementEntry } from '../handlespace/index.js';
import type { ConnectionLimits, MessageTransport, PeerIdentity, TransportUrl } from '../transport/index.js';
import type { RSerPoolError } from '../errors.js';
import type { PoolElementLimits } from '../handlespace/limits.js';

/**
 * ENRP timers (RFC 5353 section 7). Defaults follow RSPLIB's registrar,
 * which runs far faster than the RFC's suggested 30 s / 61 s / 5 s.
 */
export interface EnrpTimers {
  /** PEER-HEARTBEAT-CYCLE: presence to every peer (and the multicast group). Default 2,444 ms. */
  peerHeartbeatCycleMs: number;
  /** MAX-TIME-LAST-HEARD: a peer silent this long is probed (presence with the R bit). Default 5,000 ms. */
  maxTimeLastHeardMs: number;
  /** MAX-TIME-NO-RESPONSE: a probed peer silent this long is taken over. Default 5,000 ms. */
  maxTimeNoResponseMs: number;
  /** TAKEOVER-EXPIRY: how long a takeover waits for INIT_TAKEOVER_ACKs. Default 5,000 ms. */
  takeoverExpiryMs: number;
  /** With no peer answering this long after start, we are alone and synchronised. Default 5,000 ms. */
  mentorDiscoveryMs: number;
  /** Connect deadline for a peer connection. Default maxTimeNoResponseMs. */
  connectTimeoutMs: number;
}

export interface EnrpMulticastInit {
  /** Default 239.0.0.51. */
  group?: string;
  /** Default 9901. */
  port?: number;
  /** Only loopback: default 127.0.0.1. */
  interface?: string;
  /** Default 1. */
  ttl?: number;
}

export interface EnrpServerInit {
  /** This registrar's 32-bit server id (non-zero). */
  id: number;
  handlespace: Handlespace;
  /** ENRP URLs to listen on, e.g. tcp://127.0.0.2:9901 or memory://r1:9901. */
  listen: string[];
  /** Static peer URLs. */
  peers?: string[];
  /** Presence over UDP multicast (`{}`: 239.0.0.51:9901 on 127.0.0.1, TTL 1), only as hints at peer URLs to dial; default off. */
  multicast?: EnrpMulticastInit | false;
  timers?: Partial<EnrpTimers>;
  /** Largest ENRP message we build (handle table pages); default 65,000 bytes. */
  maxMessageBytes?: number;
  /** At most this many PEs per handle table response (tests use a small one to exercise the M bit). */
  maxPageElements?: number;
  /** Bounds on each PE a peer sends; the registrar passes its own, so both paths agree. Defaults as DEFAULT_POOL_ELEMENT_LIMITS. */
  limits?: Partial<PoolElementLimits>;
  /** PEs learned from peers (owned by another registrar) held at most; more are refused with Lack of Resources. Default 1,000,000. */
  maxPeerPoolElements?: number;
  /** Caps and timeouts of inbound ENRP connections (see ConnectionLimits for the defaults). */
  connectionLimits?: ConnectionLimits;
  /**
   * Whether this registrar still has a live ASAP association with a PE it
   * owns (the registrar answers). An audit that finds a peer claiming such a
   * PE keeps it; one we no longer hold (we were paused and taken over, and
   * the PE re-registered there) moves to the peer. Default: always held.
   */
  holdsPoolElement?: (handle: Uint8Array, identifier: number) => boolean;
  /**
   * Whether a connection's proved identity (undefined: none) may be a peer,
   * inbound or dialled (`serverId` undefined), and whether it may speak as
   * `serverId` (checked when the connection names its server). Absent: any.
   */
  authorizePeer?: (identity: PeerIdentity | undefined, serverId?: number) => boolean;
}

export interface EnrpServerComponents {
  clock?: Clock;
  logger?: Logger;
  /** The transport serving a URL; default TCP/TLS from createTransports(). */
  transportFor?: (url: TransportUrl | string) => MessageTransport;
  random?: () => number;
}

export type PeerState = 'connecting' | 'up' | 'probing' | 'taking-over' | 'down';

export interface PeerInfo {
  readonly id: number;
  readonly url: string | undefined;
  readonly state: PeerState;
  /** Clock time of the last message from it (-Infinity if never). */
  readonly lastHeard: number;
  /** PEs our handlespace says it owns. */
  readonly ownedCount: number;
  /** The checksum of its own PEs it last announced (undefined before its first presence). */
  readonly checksum: number | undefined;
  /** Our checksum over the PEs we hold for it. */
  readonly localChecksum: number;
  readonly connected: boolean;
}

export interface AuditRepair {
  peerId: number;
  added: number;
  removed: number;
}

/** Why a message from a peer was refused (also logged). */
export interface Refusal {
  peerId: number | undefined;
  error: RSerPoolError;
}

export interface EnrpServerEvents {
  'peer-up': (peer: PeerInfo) => void;
  'peer-down': (peer: PeerInfo, reason: 'takeover' | 'taken-over-by-peer' | 'silent' | 'stopped') => void;
  /** We took over `from`'s PEs; the registrar now sends each an ASAP keep-alive with the H bit. */
  takeover: (from: number, entries: readonly PoolElementEntry[]) => void;
  /** Another registrar took over `from`'s PEs. */
  'peer-takeover': (from: number, by: number, count: number) => void;
  synchronised: () => void;
  'audit-repair': (repair: AuditRepair) => void;
  refused: (refusal: Refusal) => void;
  /** A peer forwarded unreachable reports about a PE it says we are home for (rserpool's extension to ENRP_PRESENCE). */
  'unreachable-report': (peerId: number, handle: Uint8Array, identifier: number) => void;
}

export interface EnrpStatus {
  id: number;
  running: boolean;
  synchronised: boolean;
  mentorId: number | undefined;
  listen: string[];
  peers: PeerInfo[];
  /** Peer URLs dialled when not connected: the configured ones and those learned (capped, expiring). */
  knownUrls: number;
  handlespaceSize: number;
  ownedCount: number;
  checksum: number;
  takeoversInProgress: number[];
  counters: EnrpCounters;
}

export interface EnrpCounters {
  messagesSent: number;
  /** By ENRP message type (the first byte), for metrics. */
  sentByType: Record<number, number>;
  /** Decoded messages received, by type. */
  receivedByType: Record<number, number>;
  bytesSent: number;
  messagesReceived: number;
  bytesReceived: number;
  updatesSent: number;
  updateBytesSent: number;
  refused: number;
  audits: number;
  takeovers: number;
  /** Unreachable reports forwarded to a PE's home, and received from peers for PEs homed here. */
  unreachableForwarded: number;
  unreachableReceived: number;
}

export interface EnrpServer {
  readonly id: number;
  readonly events: Events<EnrpServerEvents>;
  /** True once the handlespace was downloaded from a mentor (or no peer answered): serve handle resolutions only then. */
  readonly synchronised: boolean;
  /** The URLs actually listened on (real ports when asked for port 0). */
  readonly listenUrls: readonly string[];
  /** Peers we heard before are all silent now (MAX-TIME-LAST-HEARD): our copy of the handlespace may be the stale one. */
  readonly isolated: boolean;
  /**
   * Isolated, or lately back from it (what moved meanwhile may not have reached us yet), or auditing a
   * peer: a pool missing from our copy may be registered with a registrar we reach.
   */
  readonly uncertain: boolean;
  start(): Promise<void>;
  /** Closes listeners and peer connections; no takeover is implied for anyone. */
  stop(): Promise<void>;
  peers(): PeerInfo[];
  status(): EnrpStatus;
  /**
   * Tells `homeId` that PUs reported its PE unreachable here (an ENRP_PRESENCE
   * carrying rserpool's Unreachable Report parameter, which RFC peers skip);
   * false if that registrar is not a connected peer.
   */
  forwardUnreachable(handle: Uint8Array, identifier: number, homeId: number): boolean;
  [Symbol.asyncDispose](): Promise<void>;
}
