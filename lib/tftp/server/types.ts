/**
 * The TFTP pool element: a standard TFTP server (RFC 1350, 2347, 2348, 2349,
 * 7440) that serves files under one root, hands RSerPool-aware clients state
 * cookies and resumes transfers from cookies other PEs of the pool made
 * (contract in ../contract.ts), and registers itself under a pool handle.
 */
import type { BusyPoll } from '../engine/poll.js';
import type { Clock } from '../../clock.js';
import type { Logger } from '../../logger.js';
import type { Events, TransportSet } from '../../transport/index.js';
import type { PoolElement, PoolElementInit } from '../../pool-element/index.js';
import type { CookieSecret } from './cookie.js';
import type { TftpRequestError } from './errors.js';

export interface TftpServerInit {
  /** Directory served; nothing outside it is read or written. */
  root: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default DEFAULT_TFTP_PORT; 0 = ephemeral. */
  port?: number;
  /**
   * The pool's state cookie secret, the same on every PE of the pool (the
   * AEAD key is derived from it). Default: a random one, with a warning:
   * cookies then resume only at this PE.
   */
  secret?: CookieSecret;
  /** How long a cookie is taken after it is issued. Default 10 minutes. */
  cookieLifetimeMs?: number;
  /** Take uploads (WRQ). Default false. */
  writable?: boolean;
  /** Let an upload replace an existing file. Default false (TFTP error 6). */
  overwrite?: boolean;
  /** Blocks between cookies when the client asks for cookies with interval 0. Default DEFAULT_COOKIE_INTERVAL. */
  cookieInterval?: number;
  /**
   * The longest wait for an ACK before a download retransmits, unless the
   * client negotiated a timeout (RFC 2349). Default 1,000 ms. Uploads wait
   * exactly this long before re-sending their ACK.
   */
  retransmitMs?: number;
  /**
   * The shortest such wait. In between, a download's wait follows the round
   * trip it measures and doubles while no ACK comes, so a lost block costs
   * a few round trips, not a whole timeout. Default 5 ms.
   */
  minRetransmitMs?: number;
  /**
   * A transfer is given up (silently) after (maxRetries + 1) timeouts' time
   * without progress. Default 5. An upload waiting on a disk that takes
   * nothing for as long, or a download waiting as long on a file read that
   * does not complete, ends with a TFTP ERROR (end reason 'disk-timeout').
   */
  maxRetries?: number;
  /**
   * Poll for a download's ACKs instead of sleeping: faster in lock-step, but
   * a core busy meanwhile. 'auto' (default): only for a client on this host.
   * What it cost on loopback (tftp bench, 2 vCPUs): curl at blksize 65464,
   * about 1.6 s of server CPU per GB instead of 1.0, for 1.5x the speed; at 1468
   * and atftp 1468/8, about the same CPU as sleeping (waking up costs it), for
   * 1.1-1.7x the speed. A windowed download polls 30 µs at most per window
   * and backs off from a client slower than that.
   */
  busyPoll?: BusyPoll;
  /** Concurrent transfers; more are refused with a TFTP error. Default 1,000. */
  maxTransfers?: number;
  /** Largest blksize granted. Default 65,464. */
  maxBlksize?: number;
  /** Largest windowsize granted. Default 64. */
  maxWindowSize?: number;
  /** Memory for file contents shared by all transfers (an LRU of chunks). Default 256 MiB. */
  cacheBytes?: number;
  /** Files are read in chunks of this size, ahead of the transfer. Default 4 MiB. */
  chunkBytes?: number;
  /**
   * Transfers read the next chunk ahead only while all the chunks they hold
   * together stay under this. Each established transfer may hold the chunk it
   * sends from; none is read before the client answers. Default 256 MiB.
   */
  readAheadBytes?: number;
  /** Largest upload taken. Default 4 GiB. */
  maxUploadBytes?: number;
  /** Largest file served in netascii mode (converted in memory). Default 64 MiB. */
  maxNetasciiBytes?: number;
  /** UDP socket buffers asked of the kernel (it may grant less). Default 4 MiB. */
  socketBufferBytes?: number;
  /**
   * A client must answer the first packet (OACK, first DATA, ACK 0 of an
   * upload) within this long, else the transfer is dropped. Until then the PE
   * sends that one packet per request, never on a timer. Default 3,000 ms.
   */
  handshakeMs?: number;
  /** Transfers from one address still in their handshake; more are dropped unanswered. Default 8. */
  maxHandshakesPerSource?: number;
  /**
   * Refuse read requests without options (RFC 1350 clients), with an ERROR no
   * larger than the request: a bare RRQ must be answered with a whole first
   * block, so it is the one request a spoofed source can get back at a gain
   * (16 B in, 516 B out). Default false.
   */
  requireOptions?: boolean;
  /**
   * Worker threads that run the transfers (their sockets, engines and file
   * reads); the request port, admission, cookie checks and events stay in
   * this thread. 0 (default): transfers run in this thread. Each thread
   * keeps its own block cache: cacheBytes and readAheadBytes are shared out
   * evenly, so a file served from several threads is held once per thread.
   * Transfers in workers run on the system clock (no `clock` or `wallClock`
   * component); a worker that fails ends its transfers with an error and
   * is replaced.
   */
  workers?: number;
}

export interface TftpServerComponents {
  clock?: Clock;
  /** Wall-clock milliseconds for cookie issue and expiry times, which other PEs compare. Default Date.now. */
  wallClock?: () => number;
  logger?: Logger;
}

export interface TftpPeer {
  address: string;
  port: number;
}

export interface TransferInfo {
  /** Unique per server. */
  id: number;
  kind: 'read' | 'write';
  /** Path as requested, relative to the root. */
  path: string;
  peer: TftpPeer;
  mode: 'octet' | 'netascii';
  blksize: number;
  windowsize: number;
  /** Blocks between cookies; undefined when the client did not ask for cookies. */
  cookieInterval: number | undefined;
  /** The block a cookie resumed the transfer at; undefined for a fresh request. */
  resumedAt: number | undefined;
  /** File size (read) or the announced tsize (write, if any). */
  size: number | undefined;
  /** The thread running it (worker_threads threadId; a worker's, or the server's own). */
  threadId: number;
}

export type TransferEndReason =
  /** Every block acknowledged (read) or received and stored (write). */
  | 'done'
  /** maxRetries timeouts in a row: the client vanished. */
  | 'timeout'
  /** The client sent a TFTP ERROR. */
  | 'peer-error'
  /** The peer's port is gone (ICMP port unreachable). */
  | 'peer-gone'
  /** The server ended it: bad packet, read/write failure, its worker thread failed (bytes and lastBlock then 0: not known). */
  | 'error'
  /** close() ended it. */
  | 'closed'
  /** The server left: it told the client where to resume (cookie, business card, leaving ERROR). */
  | 'moved'
  /** An upload waited on a disk that took nothing, or a download on a file read, for (maxRetries + 1) timeouts: the client got a TFTP ERROR. */
  | 'disk-timeout';

export interface TransferResult {
  reason: TransferEndReason;
  /** File bytes acknowledged (read) or stored (write) in this transfer. */
  bytes: number;
  durationMs: number;
  /** The last absolute block acknowledged (read) or received (write). */
  lastBlock: number;
  error?: Error;
  /** Keep-alives sent while a cookie client waited on this PE's disk. */
  keepAlives?: number;
}

export interface TftpServerEvents {
  'transfer-start': (t: TransferInfo) => void;
  'transfer-end': (t: TransferInfo, r: TransferResult) => void;
  /** The number of active transfers changed. */
  active: (count: number) => void;
  /** A request, cookie or packet refused with a TFTP ERROR (or dropped); the server carries on. */
  refused: (err: TftpRequestError, peer: TftpPeer) => void;
  /** A state cookie was sealed for a client, naming block `next` (metrics count them). */
  'cookie-issued': (next: number) => void;
  /** A failure of the server itself (its socket). */
  error: (err: Error) => void;
}

export interface TftpServerStopOptions {
  drainMs?: number;
  /** Tell clients with cookies to move (default true); false cuts them silently, as a crash would. */
  leave?: boolean;
  /** An ASAP_BUSINESS_CARD (encoded) naming the PEs clients should move to. */
  card?: Uint8Array;
}

export interface TftpServer extends Events<TftpServerEvents> {
  /** The bound address; valid after start(). */
  readonly address: { address: string; port: number };
  readonly activeTransfers: number;
  /** Bytes of file contents the active transfers hold (each chunk counted once per thread). */
  readonly transferBytes: number;
  /** Worker threads running the transfers; 0: this thread. */
  readonly workers: number;
  /** Binds the request port. */
  start(): Promise<void>;
  /**
   * Leaves: each client whose download can resume elsewhere is told at once
   * where (its cookie, `card`, a leaving ERROR; see ../contract.ts), requests
   * get the leaving ERROR; the others (no cookies, uploads) get up to
   * `drainMs` (default 0) to finish, then a TFTP ERROR. Resolves when every
   * transfer has ended, the told ones once their client went quiet.
   */
  stop(opts?: TftpServerStopOptions): Promise<void>;
  /** The same as stop(). */
  close(opts?: TftpServerStopOptions): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface TftpPoolElementInit extends TftpServerInit {
  /** Pool handle to register under. */
  handle: string;
  /** Registrar ASAP URLs. Empty: registrar discovery by announces. */
  registrars?: string[];
  /** PE identifier; random when absent. */
  identifier?: number;
  /** Address put in the registered user transport. Default `host` (0.0.0.0 lets the registrar fill in what it sees). */
  advertiseHost?: string;
  /** Least time between two load reports to the registrar. Default 1,000 ms. */
  loadUpdateMs?: number;
  registrationLifeMs?: number;
  discovery?: PoolElementInit['discovery'];
  /** Listen for ASAP here (registrars taking the PE over; `rserpool drain`), e.g. tcp://127.0.0.1:0. */
  asapListen?: string;
  /** Who may ask the PE to leave over `asapListen` (see PoolElementInit.leaveRequestsFrom). Default loopback only. */
  leaveRequestsFrom?: string[];
}

export interface TftpPoolElementComponents extends TftpServerComponents {
  /** ASAP transports to the registrars (default: tcp only). */
  transports?: TransportSet;
  random?: () => number;
}

export interface TftpPoolElementEvents {
  /** Registered (first) or re-registered with `registrar`. */
  registered: (registrar: string, first: boolean) => void;
  /** A new load value was reported. */
  load: (activeTransfers: number, load: number) => void;
  /** A background failure (registration trouble); the PE keeps serving and trying. */
  error: (err: Error) => void;
  /** An allowed peer asked the PE to leave (`rserpool drain`). Without a listener the PE stops (leaves) by itself. */
  'leave-requested': (from: string) => void;
}

export interface TftpPoolElement extends Events<TftpPoolElementEvents> {
  readonly identifier: number;
  readonly handle: string;
  readonly server: TftpServer;
  /** Present after start(). */
  readonly poolElement: PoolElement | undefined;
  readonly address: { address: string; port: number };
  readonly activeTransfers: number;
  /** Binds the TFTP port, then registers; resolves once registered. */
  start(opts?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Leaves the pool: deregisters, resolves the other PEs (for the business
   * card, within a bound), then closes the server (see TftpServer.close).
   */
  stop(opts?: { drainMs?: number }): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}
