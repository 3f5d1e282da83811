/**
 * One download, over one UDP socket, from one PE at a time: RRQ with
 * options, windowed receive (RFC 7440: ACK at the window's end, on a gap
 * ACK the last block in order), state cookies kept as they come, and on a
 * silent or failing PE a failover to the next one with the last cookie.
 *
 * The hot path (an in-order DATA) runs synchronously in the socket's
 * 'message' handler: one copy into the sink's chunk, no allocation, no log.
 * Timers are one periodic tick, not one per packet.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { lookup, type LookupOneOptions } from 'node:dns';
import { isIP } from 'node:net';
import { decodeAsapMessage, encodeAsapMessage } from '../../../protocols/asap/codec.js';
import { AsapMessageType } from '../../../protocols/asap/types.js';
import type { PoolElementParameter } from '../../../protocols/parameters/types.js';
import { decodeTftpPacket, encodeTftpPacket, parseTftpOptions, peerError } from '../../../protocols/tftp/codec.js';
import { absoluteBlock, ackPacket, errorPacket, wireBlock } from '../../../protocols/tftp/packets.js';
import { TFTP_DEFAULT_BLOCK_SIZE, TftpErrorCode, TftpOpcode, type TftpMode } from '../../../protocols/tftp/types.js';
import type { Clock, TimerHandle } from '../../clock.js';
import { AbortedError, RSerPoolError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { COOKIE_ERROR_PREFIX, COOKIE_OPTION, LEAVING_ERROR_PREFIX, MOVED_ERROR_TEXT, RESUME_ACK_OPTION } from '../contract.js';
import { CookieRefusedError, NoPoolElementError, TftpProtocolError, TftpRemoteError, TransferTimeoutError } from './errors.js';
import { peekCookieNext } from './cookie.js';
import type { DownloadSink } from './sink.js';
import { closeSafe, sendSafe, usableSource } from '../engine/udp.js';
import { WindowReceiver, type AckReason } from '../engine/receiver.js';
import { Poller, pollsFor, type BusyPoll } from '../engine/poll.js';
import { RttEstimator } from '../../rtt.js';

/** Where a PE takes requests: its TFTP (listening) address. */
export interface PeTarget {
  /** The PE identifier, when the PE came from a handle resolution. */
  identifier?: number;
  host: string;
  port: number;
}

export interface PeFinder {
  /**
   * The next PE to try: of the address family given, none whose key
   * (peKey) is in `exclude`; undefined when there is none.
   */
  next(exclude: ReadonlySet<string>, family: 4 | 6 | undefined, signal: AbortSignal): Promise<PeTarget | undefined>;
  /** The PE stopped answering (or failed the transfer): tell the registrar. */
  unreachable(pe: PeTarget): void;
  /** The PE said it is leaving the pool: forget it (it has deregistered; nothing to report). */
  left?(pe: PeTarget): void;
}

/** The PE's UDP address of the family wanted (any when undefined). */
export function udpTarget(pe: PoolElementParameter, family: 4 | 6 | undefined): PeTarget | undefined {
  const t = pe.userTransport;
  if (t.protocol !== 'udp') return undefined;
  const host = t.addresses.find((a) => family === undefined || isIP(a) === family);
  return host === undefined ? undefined : { identifier: pe.identifier, host, port: t.port };
}

export function peKey(pe: PeTarget): string {
  return pe.identifier !== undefined ? `#${pe.identifier}` : `${pe.host}:${pe.port}`;
}

export function describeTarget(pe: PeTarget | undefined): string {
  if (!pe) return 'no PE';
  const at = `${pe.host.includes(':') ? `[${pe.host}]` : pe.host}:${pe.port}`;
  return pe.identifier !== undefined ? `PE 0x${(pe.identifier >>> 0).toString(16).padStart(8, '0')} (${at})` : at;
}

export interface DownloadSettings {
  path: string;
  mode: TftpMode;
  /** Asked for in the RRQ; the PE may grant less. */
  blksize: number;
  windowsize: number;
  /** Retransmit the last ACK (or the request) after this long without hearing from the PE. */
  timeoutMs: number;
  /**
   * A PE silent this long is dead: fail over. Once a round trip is measured
   * the limit follows it (DEAD_RTOS retransmission timeouts, RFC 6298),
   * between minDeadAfterMs and this.
   */
  deadAfterMs: number;
  /** The floor of the measured limit; equal to deadAfterMs for a fixed one. */
  minDeadAfterMs: number;
  /** Blocks between state cookies (0: the PE's default); undefined asks for none. */
  cookieInterval: number | undefined;
  /** On a refused cookie start over from byte 0 (when the destination can), instead of failing. */
  restartOnRefusal: boolean;
  /** Failovers in a row without a block in between before giving up. */
  maxFailovers: number;
  /** Ask for the transfer size (tsize). */
  askTsize: boolean;
  /** Local address to bind; default loopback for a loopback PE, else any. */
  localAddress?: string;
  /** After the last ACK, answer a repeated last block this long (RFC 1350: the final ACK may be lost). */
  dallyMs: number;
  /** Poll for blocks instead of sleeping; default 'auto' (a PE on this host). */
  busyPoll?: BusyPoll;
}

export interface Negotiated {
  blksize: number;
  windowsize: number;
  tsize?: number;
  cookieInterval?: number;
  pe: PeTarget;
}

export interface FailoverInfo {
  from: PeTarget;
  to: PeTarget;
  /** The first block asked of the new PE (the cookie's next block; 1 when starting over). */
  atBlock: number;
  /**
   * From the last block of the old PE (or, when the client had held its ACK
   * back for a full sink, from when it let it go or the failover began) to
   * the first block of the new one: the time the client waited for data.
   */
  stallMs: number;
  cookieEchoed: boolean;
  reason: string;
}

/** Make-before-break: the PE a leaving one's card named, asked with our cookie while the leaving one still sends. */
interface Standby {
  pe: PeTarget;
  cookieNext: number;
  request: Uint8Array;
}

export interface ServedSpan {
  pe: PeTarget;
  /** Absolute block numbers, inclusive. */
  fromBlock: number;
  toBlock: number;
}

interface DownloadHooks {
  onNegotiated?: (n: Negotiated) => void;
  onFailover?: (f: FailoverInfo) => void;
  onRestart?: (reason: string) => void;
}

export interface DownloadResult {
  bytes: number;
  sha256?: string;
  /** Blocks of the file (the last one is short). */
  blocks: number;
  failovers: number;
  /** The longest failover stall, ms (0 without failover). */
  stallMs: number;
  servedBy: ServedSpan[];
  /** Starts over from byte 0 after a refused cookie. */
  restarts: number;
  /** ACKs sent for a gap in a window (a block lost). */
  gapAcks: number;
  /** Retransmissions after a timeout. */
  timeouts: number;
  blksize: number;
  windowsize: number;
  tsize?: number;
  elapsedMs: number;
}

export interface DownloadProgress {
  bytes: number;
  total?: number;
  pe: PeTarget | undefined;
  failovers: number;
  elapsedMs: number;
}

type State = 'idle' | 'hunting' | 'requesting' | 'receiving' | 'done' | 'failed';

/** Error codes after which another PE would answer the same: the download fails. */
const FATAL_CODES: ReadonlySet<number> = new Set([
  TftpErrorCode.FileNotFound,
  TftpErrorCode.AccessViolation,
  TftpErrorCode.IllegalOperation,
  TftpErrorCode.FileAlreadyExists,
  TftpErrorCode.NoSuchUser,
  TftpErrorCode.OptionNegotiationRefused,
]);

const LOOPBACK4 = /^127\./;
/** A PE is dead after this many retransmission timeouts of silence (it resends after one, then two, four ...). */
const DEAD_RTOS = 6;
/** Clock granularity in the RTO (RFC 6298 G). */
const RTO_GRANULARITY_MS = 1;
/** PEs of a business card kept. */
const MAX_WILL = 16;

/** Busy-polling while blocks come (see Poller): the PE's next block, on this host, comes within this. */
const POLL = { spinMs: 0.25, maxTurns: 1_000, maxSkip: 64 };

/**
 * The socket's address lookup: PE addresses are IP addresses, and answering
 * at once sends the ACK now rather than on the next tick (dns.lookup defers
 * even an IP address), without the work around it.
 */
function literalLookup(
  host: string,
  options: LookupOneOptions | number,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const family = isIP(host);
  if (family !== 0) callback(null, host, family);
  else if (typeof options === 'number') lookup(host, options, callback);
  else lookup(host, options, callback);
}

export class TftpDownload {
  readonly #s: DownloadSettings;
  readonly #sink: DownloadSink;
  readonly #finder: PeFinder;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #hooks: DownloadHooks;
  readonly #life = new AbortController();

  #socket: Socket | undefined;
  #family: 4 | 6 | undefined;
  #state: State = 'idle';
  #startedAt = 0;
  #tick: TimerHandle | undefined;
  #tickMs: number;
  #dally: TimerHandle | undefined;

  /** The PE asked (its listening address), and the transfer's TID once it answered. */
  #target: PeTarget | undefined;
  #peerHost = '';
  #peerPort = -1;
  #request: Uint8Array | undefined;
  #requestKind: 'rrq' | 'echo' = 'rrq';
  #negotiated = false;

  #blksize: number = TFTP_DEFAULT_BLOCK_SIZE;
  #windowsize = 1;
  #tsize: number | undefined;
  #cookieInterval: number | undefined;
  /** Next block expected from the PE (absolute). */
  #recvNext = 1;
  /** Next block the sink lacks (absolute); ahead of #recvNext after a resume from an older cookie. */
  #writeNext = 1;
  /** The receiving engine of the transfer from the current PE (one per request, made at its first DATA). */
  #rx: WindowReceiver | undefined;
  #lastAck: Uint8Array | undefined;
  #poller: Poller | undefined;
  #lastSentAt = 0;
  #lastHeardAt = 0;
  /** Round-trip estimate (RFC 6298) from a request or window ACK to the answer, Karn's rule: never across a resend. */
  readonly #rtt = new RttEstimator(RTO_GRANULARITY_MS);
  /** The packet timed: sent at, and the absolute block that answers it (0: the first answer to a request). */
  #probeAt = -1;
  #probeBlock = -1;
  /** Resends since the PE last answered. */
  #resends = 0;
  /** -1: no block yet. */
  #lastDataAt = -1;
  /** The clock when the DATA being handled came. */
  #now = 0;
  /** Blocks delivered by the engine, for the sink once the window's ACK is out or the datagrams read together are handled (see #store). */
  readonly #unstored: Uint8Array[] = [];
  #storeQueued = false;
  /** When a held ACK went out: the client waits for data from then, not from the last block. */
  #releasedAt = -1;
  /** Set by each request: the first DATA after it ends a failover or fixes where a resume starts. */
  #firstPending = false;
  /** The resume point is unknown (unreadable cookie): take it from the first DATA. */
  #resync = false;

  #cookie: Uint8Array | undefined;
  /** The cookie's next block; -1 when the cookie could not be read. */
  #cookieNext = -1;

  /** The PEs a leaving PE's business card named: tried first at the failover that follows. */
  #will: PeTarget[] = [];
  #tried = new Set<string>();
  /** TIDs of transfers given up: their late packets must not pass for the next PE's answer (PEs may share an address). */
  readonly #retired = new Set<string>();
  readonly #dead = new Set<string>();
  #inARow = 0;
  /** A PE that went silent after sending blocks: asked again when no other PE is left (it may only have paused). */
  #again: PeTarget | undefined;
  #pendingFailover: { from: PeTarget; stallStart: number; reason: string } | undefined;
  /** Make-before-break: the card's PE asked with our cookie while the leaving PE still sends. */
  #standby: Standby | undefined;
  #lastLoss: Error | undefined;
  #failovers = 0;
  #maxStall = 0;
  #restarts = 0;
  #gapAcks = 0;
  #timeouts = 0;
  readonly #served: ServedSpan[] = [];
  #spanFrom = 0;

  #resolve: ((r: DownloadResult) => void) | undefined;
  #reject: ((e: Error) => void) | undefined;

  constructor(settings: DownloadSettings, sink: DownloadSink, finder: PeFinder, components: { clock: Clock; logger: Logger }, hooks: DownloadHooks = {}) {
    this.#s = settings;
    this.#sink = sink;
    this.#finder = finder;
    this.#clock = components.clock;
    this.#logger = components.logger;
    this.#hooks = hooks;
    this.#tickMs = Math.max(5, Math.min(100, Math.floor(Math.min(settings.timeoutMs, settings.minDeadAfterMs) / 8)));
    sink.onDrain = () => this.#drained();
  }

  get state(): State {
    return this.#state;
  }

  get pe(): PeTarget | undefined {
    return this.#target;
  }

  /** The current cookie (for tests and the gateway's logs). */
  get cookie(): Uint8Array | undefined {
    return this.#cookie;
  }

  progress(): DownloadProgress {
    return {
      bytes: this.#sink.bytes,
      ...(this.#tsize !== undefined ? { total: this.#tsize } : {}),
      pe: this.#target,
      failovers: this.#failovers,
      elapsedMs: this.#clock.now() - this.#startedAt,
    };
  }

  run(signal?: AbortSignal): Promise<DownloadResult> {
    if (this.#state !== 'idle') return Promise.reject(new RSerPoolError('RSP_ERR_TFTP_STATE', 'a download runs once'));
    this.#startedAt = this.#clock.now();
    return new Promise<DownloadResult>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
      if (signal) {
        if (signal.aborted) return this.#abort(signal.reason);
        const onAbort = (): void => this.#abort(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        this.#life.signal.addEventListener('abort', () => signal.removeEventListener('abort', onAbort), { once: true });
      }
      this.#scheduleTick();
      void this.#hunt();
    });
  }

  /** Closes the socket now (ends the dally after a finished download). */
  dispose(): void {
    if (this.#dally) this.#clock.clearTimeout(this.#dally);
    this.#dally = undefined;
    if (this.#tick) this.#clock.clearTimeout(this.#tick);
    this.#tick = undefined;
    if (this.#state !== 'done' && this.#state !== 'failed') this.#fail(new AbortedError('the download was disposed'));
    this.#closeSocket();
  }

  // --- finding and asking a PE -------------------------------------------------

  async #hunt(): Promise<void> {
    this.#state = 'hunting';
    this.#target = undefined;
    this.#peerPort = -1;
    if (this.#inARow > this.#s.maxFailovers) {
      return this.#fail(new NoPoolElementError(`${this.#inARow} PEs in a row failed before sending a block; giving up`, { cause: this.#lastLoss }));
    }
    const skip = (t: PeTarget): boolean => this.#tried.has(peKey(t)) || this.#dead.has(peKey(t));
    let pe: PeTarget | undefined = this.#will.find((t) => !skip(t) && (this.#family === undefined || isIP(t.host) === this.#family));
    try {
      pe ??= await this.#finder.next(new Set([...this.#tried, ...this.#dead]), this.#family, this.#life.signal);
      pe ??= await this.#finder.next(this.#tried, this.#family, this.#life.signal);
    } catch (err) {
      if (this.#life.signal.aborted) return;
      const e = err instanceof RSerPoolError ? err : new RSerPoolError('RSP_ERR_INTERNAL', String(err), { cause: err });
      return this.#fail(new NoPoolElementError(`cannot find a PE: ${e.message}`, { cause: e }));
    }
    if (this.#life.signal.aborted) return;
    pe ??= this.#again;
    this.#again = undefined;
    if (!pe) {
      const last = this.#lastLoss ? `; last: ${this.#lastLoss.message}` : '';
      return this.#fail(new NoPoolElementError(`no PE of the pool could be reached (${this.#tried.size} tried${last})`, { cause: this.#lastLoss }));
    }
    this.#tried.add(peKey(pe));
    this.#inARow++;
    try {
      await this.#ensureSocket(pe);
    } catch (err) {
      return this.#fail(err as Error);
    }
    if (this.#life.signal.aborted) return;
    this.#ask(pe);
  }

  #ensureSocket(pe: PeTarget): Promise<void> {
    if (this.#socket) return Promise.resolve();
    const family = isIP(pe.host) === 6 ? 6 : 4;
    const local = this.#s.localAddress ?? (family === 4 ? (LOOPBACK4.test(pe.host) ? '127.0.0.1' : '0.0.0.0') : pe.host === '::1' ? '::1' : '::');
    const socket = createSocket({ type: family === 6 ? 'udp6' : 'udp4', lookup: literalLookup });
    this.#socket = socket;
    this.#family = family;
    socket.on('message', this.#onMessage);
    socket.on('error', (err) => this.#logger.warn({ err: err.message }, 'TFTP client socket error'));
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, local, () => {
        socket.off('error', reject);
        try {
          socket.setRecvBufferSize(4 << 20);
        } catch {
          // The system's limit stands.
        }
        resolve();
      });
    });
  }

  /** A new PE (port -1: its transfer port is not known yet): a new receiver and poller for it. */
  #aimAt(pe: PeTarget, port: number): void {
    this.#target = pe;
    this.#peerHost = pe.host;
    this.#peerPort = port;
    this.#rx?.stop();
    this.#rx = undefined;
    this.#poller?.stop();
    this.#poller = new Poller({ enabled: pollsFor(this.#s.busyPoll ?? 'auto', pe.host), ...POLL }, { clock: this.#clock });
  }

  /** Sends the RRQ, or the cookie echo when there is a cookie, to the PE's listening port. */
  #ask(pe: PeTarget): void {
    this.#aimAt(pe, -1);
    this.#state = 'requesting';
    this.#lastAck = undefined;
    if (this.#cookie) {
      this.#requestKind = 'echo';
      this.#request = encodeAsapMessage({ type: AsapMessageType.CookieEcho, cookie: this.#cookie });
      this.#recvNext = this.#cookieNext > 0 ? this.#cookieNext : this.#writeNext;
      this.#resync = this.#cookieNext <= 0;
    } else {
      this.#requestKind = 'rrq';
      this.#negotiated = false;
      this.#request = this.#rrq();
      this.#recvNext = 1;
      this.#resync = false;
    }
    this.#firstPending = true;
    this.#lastHeardAt = this.#clock.now();
    this.#sendRequest();
  }

  #rrq(): Uint8Array {
    const options: [string, string][] = [];
    if (this.#s.blksize !== TFTP_DEFAULT_BLOCK_SIZE) options.push(['blksize', String(this.#s.blksize)]);
    if (this.#s.windowsize !== 1) options.push(['windowsize', String(this.#s.windowsize)]);
    if (this.#s.askTsize) options.push(['tsize', '0']);
    if (this.#s.cookieInterval !== undefined) options.push([COOKIE_OPTION, String(this.#s.cookieInterval)]);
    return encodeTftpPacket({ opcode: TftpOpcode.Rrq, filename: this.#s.path, mode: this.#s.mode, options });
  }

  #sendRequest(resend = false): void {
    const pe = this.#target;
    if (!pe || !this.#request) return;
    this.#lastSentAt = this.#clock.now();
    this.#probeAt = resend ? -1 : this.#lastSentAt;
    this.#probeBlock = 0;
    // The address came from a registrar: a bad one is that PE's silence, not our crash.
    if (this.#socket) sendSafe(this.#socket, this.#request, pe.port, pe.host, () => {});
  }

  // --- receiving ---------------------------------------------------------------

  readonly #onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    if (rinfo.port !== this.#peerPort || rinfo.address !== this.#peerHost) {
      // Port 0 cannot be the PE's TID, nor be answered (the known TID passed this check once).
      if (!usableSource(rinfo.address, rinfo.port)) return;
      if (this.#standby && this.#state === 'receiving' && rinfo.address === this.#standby.pe.host && !this.#retired.has(`${rinfo.address}:${rinfo.port}`)) {
        return this.#fromStandby(msg, rinfo.port);
      }
      // The PE answers a request from a new port, its transfer's TID; only a TFTP packet names it (the PE sends no ASAP before one).
      if (this.#state !== 'requesting' || rinfo.address !== this.#peerHost || this.#retired.has(`${rinfo.address}:${rinfo.port}`)) {
        return this.#stray(msg, rinfo);
      }
      if (msg.length < 4 || msg[0] !== 0) return;
      this.#peerPort = rinfo.port;
      this.#state = 'receiving';
      this.#spanFrom = this.#recvNext;
      if (this.#probeBlock === 0) this.#sampled();
    }
    if (msg.length < 4) return;
    if (msg[0] !== 0) return this.#asap(msg);
    if (msg[1] === TftpOpcode.Data) return this.#data(msg);
    if (msg[1] === TftpOpcode.Oack) return this.#oack(msg);
    if (msg[1] === TftpOpcode.Error) return this.#error(msg);
  };

  #data(msg: Buffer): void {
    const block = (msg[2]! << 8) | msg[3]!;
    if (this.#state !== 'receiving') {
      // Done: the engine dallies, answering a repeated last block (our final ACK was lost).
      if (this.#state === 'done') this.#rx?.data(block, msg.subarray(4));
      return;
    }
    // One clock reading per block: the hot path's timestamps all take it.
    const now = this.#clock.now();
    this.#now = now;
    this.#lastHeardAt = now;
    if (block === wireBlock(this.#probeBlock) && this.#probeBlock > 0) this.#sampled();
    if (this.#firstPending) this.#firstData(block, now);
    const rx = this.#rx!;
    rx.data(block, msg.subarray(4));
    if (this.#unstored.length === 0) return;
    if (rx.inWindow === 0 || !this.#sink.takesLate) this.#store();
    else if (!this.#storeQueued) {
      this.#storeQueued = true;
      setImmediate(this.#storeLater);
    }
  }

  /** The engine's next block in order: to the sink after the engine's ACK (unless a resume from an older cookie sent it again). */
  readonly #deliver = (n: number, data: Uint8Array): boolean => {
    if (n >= this.#writeNext) {
      this.#unstored.push(data);
      this.#writeNext = n + 1;
    }
    this.#recvNext = n + 1;
    this.#lastDataAt = this.#now;
    this.#inARow = 0;
    // The window's first block answers our ACK: polling paid.
    this.#poller?.heard(this.#rx!.inWindow === 0, this.#now);
    return true;
  };

  /**
   * Writes the blocks delivered so far to the sink. A window's blocks wait
   * until its ACK is out, or until the datagrams read in one go are handled:
   * when they queue up, the window's last one is ACKed without waiting for
   * the writes of the others, and the PE sends the next window meanwhile.
   * A sink that is not `takesLate` gets each block at once.
   */
  #store(): void {
    const q = this.#unstored;
    for (let i = 0; i < q.length; i++) this.#sink.write(q[i]!, 0, q[i]!.length);
    q.length = 0;
  }

  readonly #storeLater = (): void => {
    this.#storeQueued = false;
    this.#store();
  };

  /** The engine's ACKs, timed for the round trip where they ask for the next window. */
  readonly #engineAck = (n: number, why: AckReason): void => {
    if (why === 'gap') this.#gapAcks++;
    // Karn: an answer to a repeated ACK says nothing about the round trip.
    if (why === 'gap' || why === 'repeat') this.#probeAt = this.#probeBlock = -1;
    this.#sendAck(n);
    if (why === 'window' || why === 'release') this.#probe();
  };

  /** The first DATA from the PE asked last. */
  #firstData(block: number, now: number): void {
    this.#firstPending = false;
    if (!this.#negotiated) {
      // DATA straight after the RRQ: the PE took none of the options.
      this.#negotiated = true;
      this.#blksize = TFTP_DEFAULT_BLOCK_SIZE;
      this.#windowsize = 1;
      this.#cookieInterval = undefined;
      this.#negotiatedNow(undefined);
    }
    if (this.#resync) {
      // A cookie never names a block past what we hold.
      this.#resync = false;
      this.#recvNext = Math.min(absoluteBlock(block, this.#writeNext), this.#writeNext);
      this.#spanFrom = this.#recvNext;
    }
    // Our timers drive resends and the dead-PE wait: the engine has none of its own.
    this.#rx = new WindowReceiver(
      { windowsize: this.#windowsize, blksize: this.#blksize, firstBlock: this.#recvNext, timeoutMs: Infinity, maxRetries: 0, dallyMs: Infinity },
      {
        sendAck: this.#engineAck,
        deliver: this.#deliver,
        mayAck: () => !this.#sink.full,
        complete: () => this.#complete(),
        gone: () => {},
        closed: () => {},
      },
      { clock: this.#clock },
    );
    if (this.#pendingFailover) this.#failedOver(now);
  }

  /** Times the window ACK just sent: the next window's first block answers it. */
  #probe(): void {
    if (this.#probeAt >= 0) return;
    this.#probeAt = this.#lastSentAt;
    this.#probeBlock = this.#recvNext;
  }

  /** The timed packet was answered: one round-trip sample. */
  #sampled(): void {
    const sample = this.#clock.now() - this.#probeAt;
    this.#probeAt = this.#probeBlock = -1;
    this.#resends = 0;
    this.#rtt.sample(sample);
  }

  /** How long the PE may be silent before it counts as dead: measured, within the floor and the limit. */
  #deadAfter(): number {
    const { deadAfterMs, minDeadAfterMs } = this.#s;
    // Until a PE's first block it is setting up (file, socket, first chunk): the limit, not our round trip.
    if (!this.#rtt.measured || this.#firstPending) return deadAfterMs;
    return Math.min(deadAfterMs, Math.max(minDeadAfterMs, DEAD_RTOS * this.#rtt.rto));
  }

  /** Silence before we resend: a few times before the PE counts as dead, backing off. */
  #resendAfter(dead: number): number {
    if (!this.#rtt.measured || this.#firstPending) return this.#s.timeoutMs;
    return Math.min(this.#s.timeoutMs, Math.max(2 * this.#rtt.rto, dead / 4) * 2 ** Math.min(this.#resends, 4));
  }

  #drained(): void {
    if (!this.#rx?.ackHeld) return;
    // The PE's silence counts from the ACK we let go, for the dead-PE timeout and the stall alike.
    this.#releasedAt = this.#lastHeardAt = this.#clock.now();
    if (this.#state === 'receiving') this.#rx.release();
  }

  #sendAck(abs: number): void {
    this.#poller?.expect();
    const b = ackPacket(abs);
    this.#lastAck = b;
    this.#lastSentAt = this.#clock.now();
    this.#socket?.send(b, this.#peerPort, this.#peerHost);
  }

  #resendAck(): void {
    if (!this.#lastAck || this.#peerPort < 0) return;
    // Karn: an answer to a resent ACK says nothing about the round trip.
    this.#probeAt = this.#probeBlock = -1;
    this.#lastSentAt = this.#clock.now();
    this.#socket?.send(this.#lastAck, this.#peerPort, this.#peerHost);
  }

  #oack(msg: Buffer): void {
    if (this.#state !== 'receiving') return;
    if (this.#requestKind === 'echo') {
      // A resume opens with the cookie's options, which the PE sends nothing past until we ACK 0 (we may be spoofed); again: our ACK was lost.
      if (this.#firstPending) {
        if (this.#lastAck) this.#resendAck();
        else this.#sendAck(0);
      }
      return;
    }
    if (this.#negotiated) {
      // Our ACK of the OACK was lost.
      if (this.#recvNext === 1 && this.#lastAck) this.#resendAck();
      return;
    }
    let options;
    try {
      const p = decodeTftpPacket(msg);
      if (p.opcode !== TftpOpcode.Oack) return;
      options = parseTftpOptions(p.options);
    } catch (err) {
      return this.#refuseOack(`malformed OACK: ${(err as Error).message}`);
    }
    const blksize = options.blksize ?? TFTP_DEFAULT_BLOCK_SIZE;
    const windowsize = options.windowsize ?? 1;
    if (blksize > this.#s.blksize || windowsize > this.#s.windowsize) {
      return this.#refuseOack(`the PE granted blksize ${blksize} / windowsize ${windowsize}, more than asked`);
    }
    const cookie = options.other.find(([n]) => n === COOKIE_OPTION);
    const interval = cookie && /^[0-9]+$/.test(cookie[1]) ? Number(cookie[1]) : undefined;
    if (this.#tsize !== undefined && options.tsize !== undefined && options.tsize !== this.#tsize && this.#writeNext > 1) {
      return void this.#startOver(`the file is ${options.tsize} bytes at ${describeTarget(this.#target)}, not ${this.#tsize}`);
    }
    this.#negotiated = true;
    this.#blksize = blksize;
    this.#windowsize = windowsize;
    this.#cookieInterval = this.#s.cookieInterval !== undefined ? interval : undefined;
    if (options.tsize !== undefined) this.#tsize = options.tsize;
    this.#negotiatedNow(options.tsize);
    this.#sendAck(0);
  }

  #negotiatedNow(tsize: number | undefined): void {
    this.#hooks.onNegotiated?.({
      blksize: this.#blksize,
      windowsize: this.#windowsize,
      ...(tsize !== undefined ? { tsize } : {}),
      ...(this.#cookieInterval !== undefined ? { cookieInterval: this.#cookieInterval } : {}),
      pe: this.#target!,
    });
  }

  #refuseOack(why: string): void {
    this.#fail(new TftpProtocolError(`${describeTarget(this.#target)}: ${why}`), errorPacket(TftpErrorCode.OptionNegotiationRefused, why));
  }

  #error(msg: Buffer): void {
    if (this.#state !== 'receiving') return;
    const { code, message: text } = peerError(msg);
    if (code === TftpErrorCode.NotDefined && text.startsWith(COOKIE_ERROR_PREFIX) && this.#requestKind === 'echo') {
      return void this.#cookieRefused(text.slice(COOKIE_ERROR_PREFIX.length));
    }
    const err = new TftpRemoteError(code, text);
    // A PE leaving the pool (it has deregistered): on at once, to the PEs its card named.
    if (code === TftpErrorCode.NotDefined && text.startsWith(LEAVING_ERROR_PREFIX)) return this.#lost(err, false, true);
    if (FATAL_CODES.has(code)) return this.#fail(err);
    this.#lost(err, false);
  }

  #asap(msg: Buffer): void {
    let m;
    try {
      m = decodeAsapMessage(msg);
    } catch {
      return;
    }
    if (m.type === AsapMessageType.BusinessCard) {
      // Where to go when this PE leaves; only the first few are worth a try.
      const will: PeTarget[] = [];
      for (const e of m.elements.slice(0, MAX_WILL)) {
        const t = udpTarget(e, this.#family);
        if (t && e.identifier !== this.#target?.identifier) will.push(t);
      }
      this.#will = will;
      this.#prepare();
      return;
    }
    if (m.type !== AsapMessageType.Cookie || this.#s.cookieInterval === undefined) return;
    const next = peekCookieNext(m.cookie);
    this.#lastHeardAt = this.#clock.now();
    if (next === undefined) {
      // Unreadable to us (the PE can read it): keep the latest.
      this.#cookie = m.cookie;
      this.#cookieNext = -1;
    } else if (next >= this.#cookieNext || this.#cookie === undefined) {
      this.#cookie = m.cookie;
      this.#cookieNext = next;
    }
  }

  /** A packet from someone other than the PE of the transfer (RFC 1350: ERROR 5 to a DATA from an unknown TID). */
  #stray(msg: Buffer, rinfo: RemoteInfo): void {
    if (msg.length >= 4 && msg[0] === 0 && msg[1] === TftpOpcode.Data && this.#socket) {
      sendSafe(this.#socket, errorPacket(TftpErrorCode.UnknownTransferId, 'unknown transfer ID'), rinfo.port, rinfo.address, () => {});
    }
  }

  // --- failover ----------------------------------------------------------------

  /**
   * A card mid-transfer: the PE is leaving and still sends (make-before-break).
   * The card's first PE gets our cookie now; its OACK is the moment to move.
   */
  #prepare(): void {
    if (this.#standby || this.#state !== 'receiving' || this.#firstPending || !this.#cookie || this.#cookieNext <= 0 || !this.#socket) return;
    const pe = this.#will.find((t) => !this.#dead.has(peKey(t)));
    if (!pe) return;
    const request = encodeAsapMessage({ type: AsapMessageType.CookieEcho, cookie: this.#cookie });
    this.#standby = { pe, cookieNext: this.#cookieNext, request };
    this.#logger.info({ pe: describeTarget(this.#target), next: describeTarget(pe), cookieNext: this.#cookieNext }, 'PE leaving: readying the next');
    sendSafe(this.#socket, request, pe.port, pe.host, () => {});
  }

  /** A packet from the standby PE's host, from a port not ours: its OACK moves the download there; an ERROR drops it. */
  #fromStandby(msg: Buffer, port: number): void {
    if (msg.length < 4 || msg[0] !== 0) return;
    if (msg[1] === TftpOpcode.Error) {
      // The leaving PE's own notice (or silence) leads to the next PE as without a standby.
      this.#logger.info({ pe: describeTarget(this.#standby!.pe), reason: peerError(msg).message }, 'the next PE refused the cookie');
      this.#standby = undefined;
      return;
    }
    if (msg[1] !== TftpOpcode.Oack) return;
    let resumeAck: boolean;
    try {
      const p = decodeTftpPacket(msg);
      if (p.opcode !== TftpOpcode.Oack) return;
      resumeAck = p.options.some(([n, v]) => n.toLowerCase() === RESUME_ACK_OPTION && v === '1');
    } catch {
      return;
    }
    this.#moveTo(this.#standby!, port, resumeAck);
  }

  /** The next PE is ready: the leaving one is told, the next one sent on from where we are (or from the cookie). */
  #moveTo(standby: Standby, port: number, resumeAck: boolean): void {
    this.#standby = undefined;
    const from = this.#target!;
    if (this.#socket) sendSafe(this.#socket, errorPacket(TftpErrorCode.NotDefined, MOVED_ERROR_TEXT), this.#peerPort, this.#peerHost, () => {});
    this.#finder.left?.(from);
    this.#retire();
    this.#endSpan();
    const now = this.#clock.now();
    this.#pendingFailover = {
      from,
      stallStart: this.#waitingSince(now),
      reason: `${LEAVING_ERROR_PREFIX}: moved on before it stopped sending (make-before-break)`,
    };
    // The blocks we hold, or (a PE without RESUME_ACK_OPTION) the cookie's: ACK 0 means from the cookie's next block.
    const cookieHeld = standby.cookieNext - 1;
    let held = resumeAck ? Math.max(cookieHeld, this.#recvNext - 1) : cookieHeld;
    // On the wire 0 would mean the cookie's block: one block fewer says the same.
    if (held > cookieHeld && wireBlock(held) === 0) held--;
    this.#aimAt(standby.pe, port);
    this.#state = 'receiving';
    this.#requestKind = 'echo';
    this.#request = standby.request;
    this.#recvNext = held + 1;
    this.#spanFrom = this.#recvNext;
    this.#resync = false;
    this.#firstPending = true;
    this.#lastHeardAt = now;
    this.#logger.info({ from: describeTarget(from), to: describeTarget(standby.pe), fromBlock: this.#recvNext }, 'moving to the next PE');
    this.#sendAck(held === cookieHeld ? 0 : held);
  }

  /** The PE is gone (silent, or it ended the transfer): on to the next with the last cookie. */
  #lost(cause: Error, report: boolean, left = false): void {
    const from = this.#target;
    if (!from) return;
    if (left) this.#finder.left?.(from);
    this.#standby = undefined;
    this.#retire();
    const reason = cause.message;
    this.#lastLoss = cause;
    // With no other PE left, a silent one is asked again: after sending blocks on this request it may only have
    // paused; one that never answered may be a lone server slow to start transfers (a boot storm). maxFailovers bounds both.
    const unanswered = this.#peerPort < 0;
    this.#again = report && (unanswered || this.#recvNext > this.#spanFrom) ? from : undefined;
    this.#endSpan();
    if (report) {
      this.#dead.add(peKey(from));
      this.#finder.unreachable(from);
    }
    this.#logger.info({ pe: describeTarget(from), reason, cookieNext: this.#cookieNext }, 'PE lost, failing over');
    this.#pendingFailover ??= { from, stallStart: this.#waitingSince(this.#clock.now()), reason };
    // The socket stays: the next PE answers on it; stray packets of the old one get ERROR 5.
    void this.#hunt();
  }

  /** Since when we wait for data: a client holding its ACK back for a full sink is not waiting, so the stall starts now. */
  #waitingSince(now: number): number {
    return this.#rx?.ackHeld || this.#lastDataAt < 0 ? now : Math.max(this.#lastDataAt, this.#releasedAt);
  }

  #failedOver(now: number): void {
    const f = this.#pendingFailover!;
    this.#pendingFailover = undefined;
    this.#tried = new Set();
    this.#will = [];
    const stallMs = now - f.stallStart;
    this.#failovers++;
    this.#maxStall = Math.max(this.#maxStall, stallMs);
    const info: FailoverInfo = {
      from: f.from,
      to: this.#target!,
      atBlock: this.#recvNext,
      stallMs,
      cookieEchoed: this.#requestKind === 'echo',
      reason: f.reason,
    };
    this.#logger.info({ from: describeTarget(info.from), to: describeTarget(info.to), atBlock: info.atBlock, stallMs }, 'failed over');
    this.#hooks.onFailover?.(info);
  }

  async #cookieRefused(reason: string): Promise<void> {
    this.#logger.warn({ pe: describeTarget(this.#target), reason }, 'state cookie refused');
    if (!this.#s.restartOnRefusal) return this.#fail(new CookieRefusedError(reason));
    if (!this.#sink.canRewind && this.#writeNext > 1) {
      return this.#fail(new CookieRefusedError(reason, '; the destination cannot start over'));
    }
    await this.#startOver(`cookie refused: ${reason}`);
  }

  /** Back to byte 0 at the same PE, with a fresh RRQ. */
  async #startOver(reason: string): Promise<void> {
    const pe = this.#target;
    if (!pe) return;
    // Nothing delivered before may land after the rewind.
    this.#store();
    if (!this.#sink.canRewind && this.#writeNext > 1) {
      return this.#fail(new TftpProtocolError(`${reason}; the destination cannot start over`));
    }
    this.#retire();
    this.#state = 'hunting';
    this.#peerPort = -1;
    try {
      if (this.#writeNext > 1) await this.#sink.rewind();
    } catch (err) {
      return this.#fail(err as Error);
    }
    if (this.#life.signal.aborted) return;
    this.#restarts++;
    this.#writeNext = 1;
    this.#cookie = undefined;
    this.#cookieNext = -1;
    this.#tsize = undefined;
    this.#served.length = 0;
    this.#hooks.onRestart?.(reason);
    this.#logger.info({ pe: describeTarget(pe), reason }, 'starting the download over');
    this.#ask(pe);
  }

  #retire(): void {
    if (this.#peerPort >= 0) this.#retired.add(`${this.#peerHost}:${this.#peerPort}`);
  }

  #endSpan(): void {
    const pe = this.#target;
    if (pe && this.#peerPort >= 0 && this.#recvNext - 1 >= this.#spanFrom) {
      this.#served.push({ pe, fromBlock: this.#spanFrom, toBlock: this.#recvNext - 1 });
    }
  }

  // --- timing --------------------------------------------------------------------

  #scheduleTick(): void {
    this.#tick = this.#clock.setTimeout(() => this.#onTick(), this.#tickMs);
  }

  #onTick(): void {
    this.#tick = undefined;
    if (this.#state === 'done' || this.#state === 'failed') return;
    const failed = this.#sink.failed;
    if (failed) return this.#fail(failed);
    const now = this.#clock.now();
    if (this.#state === 'requesting' || this.#state === 'receiving') {
      // While we hold our ACK back for the disk, the PE's silence is ours.
      if (this.#rx?.ackHeld) this.#lastHeardAt = now;
      const silent = now - this.#lastHeardAt;
      const dead = this.#deadAfter();
      if (silent >= dead) {
        // Datagrams that came while this process was busy are read before the timer's verdict (a stall of ours is not the PE's silence).
        setImmediate(() => this.#stillSilent(dead));
      } else {
        const after = this.#resendAfter(dead);
        // As for the verdict, what came while this process was busy is read first: a resend
        // after our own stall would send the PE back a window for nothing.
        if (silent >= after && now - this.#lastSentAt >= after) setImmediate(() => this.#stillQuiet(after));
      }
    }
    this.#scheduleTick();
  }

  #stillQuiet(after: number): void {
    if (this.#state !== 'requesting' && this.#state !== 'receiving') return;
    const now = this.#clock.now();
    if (now - this.#lastHeardAt < after || now - this.#lastSentAt < after) return;
    this.#timeouts++;
    this.#resends++;
    if (this.#state === 'requesting') this.#sendRequest(true);
    else if (this.#lastAck) this.#resendAck();
    else this.#sendAck(this.#recvNext - 1);
  }

  #stillSilent(dead: number): void {
    if (this.#state !== 'requesting' && this.#state !== 'receiving') return;
    const silent = this.#clock.now() - this.#lastHeardAt;
    if (silent >= dead) this.#lost(new TransferTimeoutError(`${describeTarget(this.#target)} did not answer for ${Math.round(silent)} ms`), true);
  }

  // --- the end -------------------------------------------------------------------

  #complete(): void {
    this.#store();
    this.#poller?.stop();
    this.#rx!.finish();
    this.#endSpan();
    this.#state = 'done';
    if (this.#tick) this.#clock.clearTimeout(this.#tick);
    this.#tick = undefined;
    this.#life.abort();
    // The download is over: the dally must not keep the process alive.
    this.#socket?.unref();
    this.#dally = this.#clock.setTimeout(() => {
      this.#dally = undefined;
      this.#closeSocket();
    }, this.#s.dallyMs);
    const blocks = this.#recvNext - 1;
    this.#sink.finish().then(
      ({ bytes, sha256 }) =>
        this.#resolve?.({
          bytes,
          ...(sha256 !== undefined ? { sha256 } : {}),
          blocks,
          failovers: this.#failovers,
          stallMs: this.#maxStall,
          servedBy: this.#served.slice(),
          restarts: this.#restarts,
          gapAcks: this.#gapAcks,
          timeouts: this.#timeouts,
          blksize: this.#blksize,
          windowsize: this.#windowsize,
          ...(this.#tsize !== undefined ? { tsize: this.#tsize } : {}),
          elapsedMs: this.#clock.now() - this.#startedAt,
        }),
      (err: unknown) => this.#reject?.(err as Error),
    );
  }

  #abort(reason: unknown): void {
    if (this.#state === 'done' || this.#state === 'failed') return;
    const err = reason instanceof RSerPoolError ? reason : new AbortedError('the download was aborted', { cause: reason });
    this.#fail(err, errorPacket(TftpErrorCode.NotDefined, 'transfer aborted by the client'));
  }

  /** Ends the download; `lastWords` (an ERROR) goes to the PE of the transfer first, if there is one. */
  #fail(err: Error, lastWords?: Uint8Array): void {
    if (this.#state === 'done' || this.#state === 'failed') return;
    const toPeer = this.#state === 'receiving' && lastWords !== undefined;
    this.#state = 'failed';
    this.#poller?.stop();
    this.#life.abort(err);
    if (this.#tick) this.#clock.clearTimeout(this.#tick);
    this.#tick = undefined;
    const socket = this.#socket;
    if (toPeer && socket) {
      // The socket closes once the ERROR is out: closing now would drop it.
      this.#socket = undefined;
      socket.off('message', this.#onMessage);
      sendSafe(socket, lastWords, this.#peerPort, this.#peerHost, () => closeSafe(socket));
    } else this.#closeSocket();
    const reject = this.#reject;
    void this.#sink.abort().finally(() => reject?.(err));
  }

  #closeSocket(): void {
    const s = this.#socket;
    this.#socket = undefined;
    if (!s) return;
    s.off('message', this.#onMessage);
    try {
      s.close();
    } catch {
      // Already closed.
    }
  }
}
