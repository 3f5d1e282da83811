import type { Acl } from './acl.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { Handlespace, PoolElementEntry, PoolHandleLike } from '../handlespace/index.js';
import type { ConnectionLimits, Events, TransportSet, TransportUrl } from '../transport/index.js';
import type { ErrorCause, PoolElementParameter } from '../../protocols/parameters/types.js';

export interface AnnounceInit {
  /** IPv4 multicast group. Default 239.0.0.50 (RSPLIB's ASAP announce group). */
  group?: string;
  /** Default 3863. */
  port?: number;
  /** Address of the interface multicast goes out on. Default 127.0.0.1 (loopback only). */
  interface?: string;
  /** Default 1 (never leaves the host's link). */
  ttl?: number;
  /** RFC 5352 T6-serverAnnounce. Default 1,000 ms. */
  intervalMs?: number;
}

export interface RegistrarInit {
  /** 32-bit registrar id; random non-zero when absent. */
  id?: number;
  /** ASAP listen URLs, e.g. `tcp://127.0.0.1:3863`, `memory://r1`. */
  asap: string[];
  /** Endpoint keep-alive period per PE. Default 5,000 ms (RSPLIB). */
  keepAliveIntervalMs?: number;
  /** How long a PE has to answer a keep-alive. Default 5,000 ms (RSPLIB). */
  keepAliveTimeoutMs?: number;
  /** RFC 5352 MAX-BAD-PE-REPORT: distinct PU reports that remove a PE. Default 3. */
  unreachableThreshold?: number;
  /** Reports older than this no longer count. Default 60,000 ms. */
  unreachableWindowMs?: number;
  /** Unreachable reports one reporter (identity, or address) may file at once; then `unreachableReportsPerSecond`. Default 20. */
  unreachableBurst?: number;
  /** Default 2. */
  unreachableReportsPerSecond?: number;
  /** Who may register (`pe`) and resolve (`pu`) which handles, and (with ENRP) be a peer; absent: everyone. */
  acl?: Acl;
  /** Registration life is clamped to this (ASAP and ENRP). Default 3,600,000 ms. */
  maxRegistrationLifeMs?: number;
  /** Longest pool handle accepted (ASAP and ENRP). Default 1,024 bytes. */
  maxHandleLength?: number;
  /** Addresses per transport parameter of a PE (ASAP and ENRP). Default 32. */
  maxTransportAddresses?: number;
  /** Largest encoded Pool Element parameter (ASAP and ENRP). Default 2,048 bytes. */
  maxPoolElementBytes?: number;
  /** Pools in the handlespace it creates. Default 100,000. */
  maxPools?: number;
  /** Consistent-hash ring points in the handlespace it creates. Default 4,194,304. */
  maxRingPoints?: number;
  /** PEs one ASAP connection may hold (flood bound). Default 1,024. */
  maxPoolElementsPerConnection?: number;
  /** PEs this registrar owns at most. Default 1,000,000. */
  maxPoolElements?: number;
  /** Handle resolution items when the PU gives no option. Default 3. */
  defaultResolveItems?: number;
  /** Upper bound of handle resolution items. Default 128. */
  maxResolveItems?: number;
  /** Caps and timeouts of inbound ASAP connections (see ConnectionLimits for the defaults). */
  connectionLimits?: ConnectionLimits;
  /** Server announce over UDP multicast; false switches it off. Default on. */
  announce?: AnnounceInit | false;
  /**
   * Whether handle resolution is answered. An ENRP peer starts unsynchronised
   * and flips it once it has the handlespace; default true.
   */
  synchronised?: boolean;
  /**
   * For this long after start, a resolution of a handle we do not know is
   * answered with Lack of Resources (try another registrar, or again), not
   * Unknown Pool Handle, which pool users take as final: a registrar
   * restarted empty has not heard from its PEs yet. For a registrar without
   * ENRP peers; default 0 (the CLI's --startup-grace defaults to 10 s).
   */
  startupGraceMs?: number;
}

export interface RegistrarComponents {
  clock?: Clock;
  logger?: Logger;
  /** Uniform in [0, 1). */
  random?: () => number;
  /** Default: tcp only. */
  transports?: TransportSet;
  /** An existing handlespace (ENRP tests share one); default a new one on the clock. */
  handlespace?: Handlespace;
}

/** Why the registrar itself removed a PE it owned. */
export type RemovalReason = 'expired' | 'keep-alive-timeout' | 'unreachable';

export interface RegistrarEvents {
  /** A PE registered (created) or re-registered through ASAP here; we are its home. */
  registered: (entry: PoolElementEntry, created: boolean) => void;
  /** A PE we own deregistered through ASAP. */
  deregistered: (entry: PoolElementEntry) => void;
  /** A PE we own was removed by the registrar. */
  removed: (entry: PoolElementEntry, reason: RemovalReason) => void;
  /** A registration was refused (the R bit went out with `cause`); `peer` is its proved identity (`psk:NAME`) or `anonymous@HOST`. */
  refused: (handle: Uint8Array, identifier: number, cause: ErrorCause, reason: string, peer: string) => void;
  /** The ACL refused `peer` the role (`pe`: a registration, `pu`: a resolution) for `handle`. */
  'acl-refused': (peer: string, role: 'pe' | 'pu', handle: Uint8Array) => void;
  /** PUs reported a PE owned by another registrar unreachable past the threshold: ENRP forwards it to the home (rate-limited here). */
  'foreign-unreachable': (entry: PoolElementEntry) => void;
  /** A message on an ASAP connection could not be decoded or was not expected. */
  'bad-message': (connectionId: string, error: Error) => void;
  connection: (connectionId: string, remote: string) => void;
  disconnect: (connectionId: string) => void;
}

export interface PoolElementStatus {
  identifier: number;
  homeRegistrarId: number;
  registrationLife: number;
  expiresInMs: number | null;
  userTransport: PoolElementParameter['userTransport'];
  policy: PoolElementParameter['policy'];
  /** The ASAP connection of a PE we own, if it is still open. */
  connection: string | null;
}

export interface PoolStatus {
  /** Handle as text when printable, else hex. */
  handle: string;
  policyType: number;
  elements: PoolElementStatus[];
}

export interface RegistrarCounters {
  /** Handle resolutions answered (with PEs or with Unknown Pool Handle). */
  resolutions: number;
  /** Resolutions for a handle with no PE. */
  resolutionsUnknown: number;
  /** ASAP_ENDPOINT_UNREACHABLE reports received. */
  unreachableReports: number;
  /** Reports ignored: over their reporter's rate, or of a PE not in the handlespace. */
  unreachableReportsIgnored: number;
  /** Keep-alive probes sent because reports reached the threshold. */
  unreachableProbes: number;
  /** Registrations and resolutions refused for security: by the ACL, or a PE identifier owned by another identity. */
  refusedByAcl: number;
}

export interface RegistrarStatus {
  id: number;
  synchronised: boolean;
  asap: string[];
  connections: number;
  poolElements: number;
  owned: number;
  pools: PoolStatus[];
}

export interface Registrar extends Events<RegistrarEvents> {
  /** 32-bit registrar id (non-zero). */
  readonly id: number;
  readonly handlespace: Handlespace;
  /** Bound ASAP addresses (real ports), after start(). */
  readonly addresses: readonly TransportUrl[];
  readonly synchronised: boolean;
  /** Open ASAP connections. */
  readonly connectionCount: number;
  /** Counts since start, for metrics (events carry the rest). */
  readonly counters: RegistrarCounters;
  start(opts?: { signal?: AbortSignal }): Promise<void>;
  stop(opts?: { signal?: AbortSignal }): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
  status(): RegistrarStatus;
  /** The open ASAP connection of a PE we own, or null. */
  connectionOf(handle: PoolHandleLike, identifier: number): string | null;

  // --- for ENRP ------------------------------------------------------------
  /** Gate handle resolution (answered with Lack of Resources while false). */
  setSynchronised(value: boolean): void;
  /**
   * While `isolated()` holds (ENRP hears none of its peers, or cannot yet be
   * sure its copy is complete), a handle with no PE here is answered Lack of
   * Resources ("try another registrar"), not the final Unknown Pool Handle:
   * the PEs may be registered with peers.
   */
  setIsolationCheck(isolated: () => boolean): void;
  /** Applies a PE owned by another registrar (ENRP update); no keep-alive from here. */
  applyForeign(handle: PoolHandleLike, pe: PoolElementParameter, ownerId: number): boolean;
  /** Removes a PE owned by another registrar (ENRP update). */
  removeForeign(handle: PoolHandleLike, identifier: number): boolean;
  /**
   * Takeover: every PE of `fromOwnerId` becomes ours and is sent an
   * ASAP_ENDPOINT_KEEP_ALIVE with the H bit (on its ASAP connection here, if
   * any, else to its ASAP transport address over tcp). Returns how many moved.
   */
  takeover(fromOwnerId: number, opts?: { signal?: AbortSignal }): Promise<number>;
  /**
   * PEs that ENRP took over for us (the handlespace already names us their
   * home): each one we can reach is supervised from now on and sent a
   * keep-alive with the H bit, so one that neither answers nor re-registers
   * goes; one with no ASAP transport we can reach is left to expire by its life.
   */
  adopt(entries: readonly PoolElementEntry[], opts?: { signal?: AbortSignal }): Promise<void>;
  /**
   * A peer registrar forwarded unreachable reports about a PE: if we are its
   * home, it is probed with a keep-alive now and goes only if that times out
   * (rate-limited per peer, as a PU's reports are).
   */
  reportedUnreachableByPeer(handle: Uint8Array, identifier: number, peerId: number): void;
  /** Sends one keep-alive with the H bit to a PE; resolves true if it went out. */
  sendHomeKeepAlive(handle: PoolHandleLike, identifier: number, opts?: { signal?: AbortSignal }): Promise<boolean>;
}
