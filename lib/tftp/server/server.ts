import type { BusyPoll } from '../engine/poll.js';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { Worker } from 'node:worker_threads';
import { randomInt } from 'node:crypto';
import { realpath, stat } from 'node:fs/promises';
import { isIPv6 } from 'node:net';
import { EventEmitter } from 'eventemitter3';
import { systemClock, type Clock, type TimerHandle } from '../../clock.js';
import { InvalidOptionError, StateError } from '../../errors.js';
import { silentLogger, type Logger } from '../../logger.js';
import { createPoolElement, type PoolElement } from '../../pool-element/index.js';
import { createPoolUser } from '../../pool-user/index.js';
import { handleBytes } from '../../asap-client/channel.js';
import { decodeAsapMessage, encodeAsapMessage } from '../../../protocols/asap/codec.js';
import { AsapMessageType } from '../../../protocols/asap/types.js';
import { LOAD_MAX, PolicyType } from '../../../protocols/parameters/types.js';
import { decodeTftpPacket, parseTftpOptions } from '../../../protocols/tftp/codec.js';
import {
  TFTP_DEFAULT_BLOCK_SIZE,
  TFTP_MAX_BLOCK_SIZE,
  TFTP_MIN_BLOCK_SIZE,
  TftpErrorCode,
  TftpOpcode,
  type TftpRequest,
} from '../../../protocols/tftp/types.js';
import { COOKIE_OPTION, DEFAULT_COOKIE_INTERVAL, DEFAULT_TFTP_PORT } from '../contract.js';
import { DEFAULT_COOKIE_LIFETIME_MS, deriveCookieKey, encodeCookie, randomCookieSecret, verifyCookie, type CookieKey, type CookieState } from './cookie.js';
import {
  CookieError,
  TftpAccessError,
  TftpFileNotFoundError,
  TftpIllegalOperationError,
  TftpRequestError,
  TftpOptionsRequiredError,
  TftpServerBusyError,
  TftpDiskFullError,
  TftpLeavingError,
} from './errors.js';
import { removeStaleUploads } from './files.js';
import { errorPacket } from '../../../protocols/tftp/packets.js';
import { openTransferSocket, type LeaveNotice, type Transfer, type TransferEnd } from './transfer.js';
import { TransferRunner, type AgreedOptions, type Job, type RunnerConfig, type TransferBackend } from './runner.js';
import { TransferThreads } from './workers.js';
import { sendSafe, usableSource } from '../engine/udp.js';
import type {
  TftpPeer,
  TftpPoolElement,
  TftpPoolElementComponents,
  TftpPoolElementEvents,
  TftpPoolElementInit,
  TftpServer,
  TftpServerComponents,
  TftpServerEvents,
  TftpServerInit,
  TftpServerStopOptions,
  TransferInfo,
} from './types.js';

/** PEs named in a leaving PE's business card: enough to fail over, small enough for one datagram. */
const MAX_CARD_ELEMENTS = 8;
/** Worker threads at most (a few per core is already too many). */
const MAX_WORKERS = 1024;
/** How long a leaving PE looks for the other PEs before it tells its clients without them. */
const LEAVE_RESOLVE_MS = 500;

interface Config {
  host: string;
  port: number;
  cookieKey: CookieKey;
  cookieLifetimeMs: number;
  writable: boolean;
  overwrite: boolean;
  cookieInterval: number;
  retransmitMs: number;
  minRetransmitMs: number;
  maxRetries: number;
  busyPoll: BusyPoll;
  maxTransfers: number;
  maxBlksize: number;
  maxWindowSize: number;
  maxUploadBytes: number;
  maxNetasciiBytes: number;
  socketBufferBytes: number;
  handshakeMs: number;
  maxHandshakesPerSource: number;
  requireOptions: boolean;
}

/** A client port's transfer, from its request on. */
interface PeerEntry {
  request: Buffer;
  transfer: Transfer | undefined;
  /** Counted against its address until the client answers once (or the transfer ends). */
  handshaking: boolean;
  address: string;
}

function positive(name: string, v: number | undefined, fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return fallback;
  if (!Number.isFinite(v) || v < min || v > max) throw new InvalidOptionError(`${name} ${v} is not in ${min}..${max}`);
  return v;
}

/** Bad input is logged, but a flood of it must not flood the log: at most `perSecond` lines, then a count. */
class LogLimiter {
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #perSecond: number;
  #windowStart = Number.NEGATIVE_INFINITY;
  #count = 0;
  #suppressed = 0;

  constructor(clock: Clock, logger: Logger, perSecond = 20) {
    this.#clock = clock;
    this.#logger = logger;
    this.#perSecond = perSecond;
  }

  log(level: 'info' | 'warn', obj: object, msg: string): void {
    const now = this.#clock.now();
    if (now - this.#windowStart >= 1000) {
      if (this.#suppressed > 0) this.#logger.warn({ suppressed: this.#suppressed }, 'refusals not logged in the last second');
      this.#windowStart = now;
      this.#count = 0;
      this.#suppressed = 0;
    }
    if (++this.#count > this.#perSecond) {
      this.#suppressed++;
      return;
    }
    this.#logger[level](obj, msg);
  }
}

class TftpServerImpl extends EventEmitter<TftpServerEvents> implements TftpServer {
  readonly #init: TftpServerInit;
  readonly #cfg: Config;
  readonly #clock: Clock;
  readonly #wallClock: () => number;
  readonly #logger: Logger;
  readonly #refusals: LogLimiter;
  #runner: TransferBackend | undefined;
  readonly #budget: { cacheBytes: number; chunkBytes: number; readAheadBytes: number };
  readonly #workers: number;
  #root = '';
  #socket: Socket | undefined;
  #address = { address: '', port: 0 };
  #state: 'new' | 'starting' | 'running' | 'closing' | 'closed' = 'new';
  /** Transfers by client address|port, including ones still being set up. */
  readonly #peers = new Map<string, PeerEntry>();
  /** Transfers in their handshake, by client address. */
  readonly #handshakes = new Map<string, number>();
  /** Entries in their handshake, oldest first. */
  readonly #handshaking = new Set<PeerEntry>();
  readonly #setups = new Set<Promise<void>>();
  #active = 0;
  #nextId = 1;
  /** Checked each time a transfer ends (close() waits on them). */
  readonly #endWaiters = new Set<() => void>();
  /** close() tells clients to move: requests get the leaving ERROR meanwhile. */
  #leaving = false;

  constructor(init: TftpServerInit, components: TftpServerComponents) {
    super();
    this.#init = init;
    this.#clock = components.clock ?? systemClock;
    this.#wallClock = components.wallClock ?? Date.now;
    this.#logger = (components.logger ?? silentLogger).child({ component: 'tftp-server' });
    this.#refusals = new LogLimiter(this.#clock, this.#logger);
    let secret = init.secret;
    if (secret === undefined || secret.length === 0) {
      secret = randomCookieSecret();
      this.#logger.warn(
        {},
        'no cookie secret configured: using a random one, so a download resumes only at this PE, not at another PE of the pool; give every PE the same secret (--cookie-secret-file or RSERPOOL_COOKIE_SECRET)',
      );
    }
    this.#cfg = {
      host: init.host ?? '127.0.0.1',
      port: positive('port', init.port, DEFAULT_TFTP_PORT, 0, 65535),
      cookieKey: deriveCookieKey(secret),
      cookieLifetimeMs: positive('cookieLifetimeMs', init.cookieLifetimeMs, DEFAULT_COOKIE_LIFETIME_MS),
      writable: init.writable ?? false,
      overwrite: init.overwrite ?? false,
      cookieInterval: positive('cookieInterval', init.cookieInterval, DEFAULT_COOKIE_INTERVAL),
      retransmitMs: positive('retransmitMs', init.retransmitMs, 1_000),
      minRetransmitMs: positive('minRetransmitMs', init.minRetransmitMs, 5, 0),
      maxRetries: positive('maxRetries', init.maxRetries, 5, 0),
      busyPoll: init.busyPoll ?? 'auto',
      maxTransfers: positive('maxTransfers', init.maxTransfers, 1_000),
      maxBlksize: positive('maxBlksize', init.maxBlksize, TFTP_MAX_BLOCK_SIZE, TFTP_MIN_BLOCK_SIZE, TFTP_MAX_BLOCK_SIZE),
      maxWindowSize: positive('maxWindowSize', init.maxWindowSize, 64, 1, 65535),
      maxUploadBytes: positive('maxUploadBytes', init.maxUploadBytes, 4 * 2 ** 30, 0),
      maxNetasciiBytes: positive('maxNetasciiBytes', init.maxNetasciiBytes, 64 * 2 ** 20, 0),
      socketBufferBytes: positive('socketBufferBytes', init.socketBufferBytes, 4 * 2 ** 20, 4096),
      handshakeMs: positive('handshakeMs', init.handshakeMs, 3_000),
      maxHandshakesPerSource: positive('maxHandshakesPerSource', init.maxHandshakesPerSource, 8),
      requireOptions: init.requireOptions ?? false,
    };
    this.#budget = {
      cacheBytes: positive('cacheBytes', init.cacheBytes, 256 * 2 ** 20, 0),
      chunkBytes: positive('chunkBytes', init.chunkBytes, 4 * 2 ** 20, 65536),
      readAheadBytes: positive('readAheadBytes', init.readAheadBytes, 256 * 2 ** 20, 0),
    };
    this.#workers = Math.floor(positive('workers', init.workers, 0, 0, MAX_WORKERS));
    if (this.#workers > 0 && ((components.clock ?? systemClock) !== systemClock || (components.wallClock ?? Date.now) !== Date.now)) {
      throw new InvalidOptionError('transfers in worker threads run on the system clock: give no clock or wallClock with workers');
    }
  }

  get address(): { address: string; port: number } {
    return this.#address;
  }

  get activeTransfers(): number {
    return this.#active;
  }

  get transferBytes(): number {
    return this.#runner?.transferBytes ?? 0;
  }

  get workers(): number {
    return this.#workers;
  }

  get runner(): TransferBackend | undefined {
    return this.#runner;
  }

  get maxTransfers(): number {
    return this.#cfg.maxTransfers;
  }

  async start(): Promise<void> {
    if (this.#state !== 'new') throw new StateError(`the TFTP server is ${this.#state}`);
    this.#state = 'starting';
    try {
      this.#root = await realpath(this.#init.root);
      if (!(await stat(this.#root)).isDirectory()) throw new Error('not a directory');
    } catch (err) {
      this.#state = 'closed';
      throw new InvalidOptionError(`root ${this.#init.root} is not a directory: ${(err as Error).message}`, { cause: err });
    }
    if (this.#cfg.writable) {
      const stale = await removeStaleUploads(this.#root, this.#wallClock() - this.#cfg.cookieLifetimeMs);
      if (stale.length > 0) this.#logger.info({ removed: stale.length }, 'removed temporary files of uploads a stopped process left behind');
    }
    const { host, port, socketBufferBytes } = this.#cfg;
    const n = this.#workers;
    // Each thread has a block cache of its own: the budgets are shared out, so the process holds what was configured.
    const runnerCfg: RunnerConfig = {
      ...this.#cfg,
      cacheBytes: Math.floor(this.#budget.cacheBytes / Math.max(1, n)),
      chunkBytes: this.#budget.chunkBytes,
      readAheadBytes: Math.floor(this.#budget.readAheadBytes / Math.max(1, n)),
    };
    const threads = n > 0 ? new TransferThreads(n, this.#root, runnerCfg, this.#logger) : undefined;
    const ready = threads?.start();
    ready?.catch(() => {});
    const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', recvBufferSize: socketBufferBytes, sendBufferSize: socketBufferBytes });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ port, address: host, exclusive: true }, () => {
        socket.off('error', reject);
        resolve();
      });
    }).catch(async (err: unknown) => {
      this.#state = 'closed';
      socket.close();
      await threads?.close();
      throw err;
    });
    if (ready) {
      try {
        await ready;
      } catch (err) {
        this.#state = 'closed';
        socket.close();
        await threads!.close();
        throw err;
      }
    }
    this.#runner = threads ?? new TransferRunner(this.#root, runnerCfg, { clock: this.#clock, wallClock: this.#wallClock });
    socket.on('error', (err) => {
      this.#logger.error({ err }, 'TFTP request socket failed');
      this.emit('error', err);
    });
    socket.on('message', this.#onRequest);
    this.#socket = socket;
    const a = socket.address();
    this.#address = { address: a.address, port: a.port };
    await this.#warmUp();
    this.#state = 'running';
    this.#logger.info({ root: this.#root, address: this.#address, workers: n }, 'TFTP server listening');
  }

  /**
   * A client that fails over to a PE just started must not wait for its
   * cold code (first AEAD, first transfer socket): one cookie is sealed and
   * opened, one socket bound and closed, before the PE takes requests.
   */
  async #warmUp(): Promise<void> {
    const { cookieKey, cookieLifetimeMs } = this.#cfg;
    const address = this.#address.address;
    const now = this.#wallClock();
    const state: CookieState = { path: 'warm-up', size: 1, mtimeMs: 0, blksize: 512, windowsize: 1, timeout: 0, next: 1, interval: 1 };
    verifyCookie(encodeCookie(state, cookieKey, { address, now, lifetimeMs: cookieLifetimeMs }), cookieKey, { address, now });
    // Worker threads warm their own sockets up.
    if (this.#workers > 0) return;
    try {
      (await openTransferSocket(this.#cfg.host, { address: isIPv6(address) ? '::1' : '127.0.0.1', port: this.#address.port }, 4096)).close();
    } catch {
      // Only a warm-up.
    }
  }

  stop(opts: TftpServerStopOptions = {}): Promise<void> {
    return this.close(opts);
  }

  async close(opts: TftpServerStopOptions = {}): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'closing') return;
    if (this.#state === 'new') {
      this.#state = 'closed';
      return;
    }
    const leave = opts.leave ?? true;
    this.#leaving = leave;
    this.#state = 'closing';
    this.#runner?.closing(leave);
    // The request socket stays open while transfers end: requests get the leaving ERROR.
    if (!leave) this.#closeSocket();
    await Promise.allSettled([...this.#setups]);
    if (leave) {
      const notice: LeaveNotice = { error: errorPacket(TftpErrorCode.NotDefined, new TftpLeavingError().message), card: opts.card };
      let told = 0;
      for (const { transfer: t } of [...this.#peers.values()]) if (t?.leave(notice)) told++;
      if (told > 0) this.#logger.info({ transfers: told }, 'told clients to resume at another PE');
    }
    const staying = (): boolean => [...this.#peers.values()].some((e) => e.transfer !== undefined && !e.transfer.leaving);
    const drainMs = opts.drainMs ?? 0;
    if (drainMs > 0 && staying()) await this.#until(() => !staying(), drainMs);
    for (const { transfer: t } of [...this.#peers.values()]) if (t && !t.leaving) t.abort(!t.wantsCookies, 'the server is shutting down', true);
    // Told clients end once quiet; an aborted upload once its temporary file is removed.
    await this.#until(() => this.#active === 0, Number.POSITIVE_INFINITY);
    this.#closeSocket();
    await this.#runner?.close();
    this.#state = 'closed';
  }

  #closeSocket(): void {
    const socket = this.#socket;
    this.#socket = undefined;
    socket?.close();
  }

  /** Resolves once `done()` holds (checked as transfers end) or after `ms`. */
  #until(done: () => boolean, ms: number): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let t: TimerHandle | undefined;
      const finish = (): void => {
        if (t !== undefined) this.#clock.clearTimeout(t);
        this.#endWaiters.delete(check);
        resolve();
      };
      const check = (): void => {
        if (done()) finish();
      };
      this.#endWaiters.add(check);
      if (Number.isFinite(ms)) t = this.#clock.setTimeout(finish, ms);
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // --- requests ----------------------------------------------------------------

  readonly #onRequest = (msg: Buffer, rinfo: RemoteInfo): void => {
    if (msg.length === 0 || (this.#state !== 'running' && !this.#leaving)) return;
    // No answer can go back to port 0 or a group address: nothing to start.
    if (!usableSource(rinfo.address, rinfo.port)) return;
    const peer = { address: rinfo.address, port: rinfo.port };
    if (this.#state !== 'running') {
      // Leaving: a request or cookie echo is sent on at once (an ERROR no larger than it); nothing else is answered.
      const isRequest = msg[0] !== 0 || (msg.length >= 2 && (msg[1] === TftpOpcode.Rrq || msg[1] === TftpOpcode.Wrq));
      if (isRequest) this.#refuse(new TftpLeavingError(), peer, false, false, msg.length);
      return;
    }
    if (msg[0] !== 0) {
      this.#asap(msg, peer);
      return;
    }
    if (msg.length < 2) {
      this.#refuse(new TftpIllegalOperationError('illegal TFTP operation: truncated packet'), peer, false, false, msg.length);
      return;
    }
    const opcode = msg[1]!;
    if (opcode === TftpOpcode.Rrq || opcode === TftpOpcode.Wrq) {
      let req: TftpRequest;
      try {
        req = decodeTftpPacket(msg) as TftpRequest;
      } catch (err) {
        this.#refuse(
          new TftpIllegalOperationError(`illegal TFTP operation: malformed request: ${(err as Error).message}`, { cause: err }),
          peer,
          false,
          false,
          msg.length,
        );
        return;
      }
      if (this.#cfg.requireOptions && req.opcode === TftpOpcode.Rrq && req.options.length === 0) {
        this.#refuse(new TftpOptionsRequiredError('options required (blksize, tsize ...)'), peer, false, false, msg.length);
        return;
      }
      this.#setup(peer, msg, (entry) => this.#startRequest(req, peer, entry));
    } else if (opcode === TftpOpcode.Error) {
      // Never answer an ERROR: two servers would answer each other forever.
    } else if (opcode === TftpOpcode.Data || opcode === TftpOpcode.Ack || opcode === TftpOpcode.Oack) {
      this.#refuse(new TftpIllegalOperationError('illegal TFTP operation: only read and write requests go to this port'), peer, false, false, msg.length);
    } else {
      this.#refuse(new TftpIllegalOperationError(`illegal TFTP operation: unknown opcode ${opcode}`), peer, false, false, msg.length);
    }
  };

  #asap(msg: Buffer, peer: TftpPeer): void {
    let cookie: Uint8Array;
    try {
      const m = decodeAsapMessage(msg);
      if (m.type !== AsapMessageType.CookieEcho) {
        this.#refusals.log('info', { peer, type: m.type }, 'ASAP message other than a cookie echo dropped');
        return;
      }
      cookie = m.cookie;
    } catch (err) {
      this.#refuse(
        new TftpIllegalOperationError('illegal TFTP operation: neither a TFTP packet nor an ASAP cookie echo', { cause: err }),
        peer,
        false,
        false,
        msg.length,
      );
      return;
    }
    this.#setup(peer, msg, (entry) => this.#startResume(cookie, peer, entry));
  }

  /**
   * Runs a request's setup. The same request again from the same client port
   * is a retransmission (the transfer answers it, once per request, until the
   * client answered); another request from that port means the client gave
   * up on the transfer there, which then ends.
   */
  #setup(peer: TftpPeer, request: Buffer, run: (entry: PeerEntry) => Promise<void>): void {
    const key = `${peer.address}|${peer.port}`;
    const existing = this.#peers.get(key);
    if (existing) {
      if (existing.request.equals(request)) {
        existing.transfer?.repeat();
        return;
      }
      if (existing.transfer === undefined) return;
      existing.transfer.abort(false, '');
    }
    if ((this.#handshakes.get(peer.address) ?? 0) >= this.#cfg.maxHandshakesPerSource) {
      // Unanswered: an answer per request is what a flood from spoofed addresses wants.
      this.#refuse(new TftpServerBusyError(`more than ${this.#cfg.maxHandshakesPerSource} unanswered transfers from ${peer.address}`), peer, false, true);
      return;
    }
    if (this.#peers.size >= this.#cfg.maxTransfers && !this.#evictHandshake()) {
      this.#refuse(new TftpServerBusyError('too many transfers at once; try another server of the pool'), peer);
      return;
    }
    const entry: PeerEntry = { request, transfer: undefined, handshaking: true, address: peer.address };
    this.#handshaking.add(entry);
    this.#handshakes.set(peer.address, (this.#handshakes.get(peer.address) ?? 0) + 1);
    this.#peers.set(key, entry);
    const p = run(entry)
      .catch((err: unknown) => {
        this.#settle(entry);
        if (this.#peers.get(key) === entry) this.#peers.delete(key);
        this.#refuse(
          err instanceof TftpRequestError ? err : new TftpServerBusyError(`server error: ${(err as Error).message}`, { cause: err }),
          peer,
          !(err instanceof TftpRequestError),
        );
      })
      .finally(() => this.#setups.delete(p));
    this.#setups.add(p);
  }

  /**
   * Full: the oldest transfer whose client never answered makes room, so a
   * flood of unanswered requests cannot lock clients that answer out.
   */
  #evictHandshake(): boolean {
    for (const e of this.#handshaking) {
      if (e.transfer === undefined) continue;
      e.transfer.abort(false, '');
      // A transfer in a worker thread ends a little later: it is not picked twice meanwhile.
      this.#settle(e);
      return true;
    }
    return false;
  }

  /** The entry's handshake is over (the client answered, or the transfer ended). */
  #settle(entry: PeerEntry): void {
    if (!entry.handshaking) return;
    entry.handshaking = false;
    this.#handshaking.delete(entry);
    const n = (this.#handshakes.get(entry.address) ?? 1) - 1;
    if (n > 0) this.#handshakes.set(entry.address, n);
    else this.#handshakes.delete(entry.address);
  }

  /** `maxBytes`: garbage gets an answer no larger than itself (or none), so it cannot be reflected at a gain. */
  #refuse(err: TftpRequestError, peer: TftpPeer, internal = false, silent = false, maxBytes = Number.POSITIVE_INFINITY): void {
    const packet = silent ? undefined : errorPacket(err.tftpCode, err.message, maxBytes);
    if (this.#socket && packet) sendSafe(this.#socket, packet, peer.port, peer.address, () => {});
    const quiet = err instanceof TftpFileNotFoundError || err instanceof TftpLeavingError || (err instanceof CookieError && err.reason === 'stale');
    this.#refusals.log(internal ? 'warn' : quiet ? 'info' : 'warn', { peer, code: err.code, tftpCode: err.tftpCode, err: err.message }, 'TFTP request refused');
    this.emit('refused', err, peer);
  }

  #negotiate(req: TftpRequest): AgreedOptions {
    const cfg = this.#cfg;
    const p = parseTftpOptions(req.options);
    const out: AgreedOptions = {
      blksize: TFTP_DEFAULT_BLOCK_SIZE,
      windowsize: 1,
      timeoutMs: cfg.retransmitMs,
      timeoutSec: 0,
      tsizeAsked: false,
      tsize: undefined,
      cookieInterval: undefined,
      oack: [],
    };
    // Options the codec set aside (bad values) are left out of the OACK, as RFC 2347 allows.
    for (const [name, value] of req.options) {
      switch (name) {
        case 'blksize':
          if (p.blksize !== undefined && !out.oack.some(([n]) => n === name)) {
            out.blksize = Math.min(p.blksize, cfg.maxBlksize);
            out.oack.push([name, String(out.blksize)]);
          }
          break;
        case 'windowsize':
          if (p.windowsize !== undefined && !out.oack.some(([n]) => n === name)) {
            out.windowsize = Math.min(p.windowsize, cfg.maxWindowSize);
            out.oack.push([name, String(out.windowsize)]);
          }
          break;
        case 'timeout':
          if (p.timeout !== undefined && !out.oack.some(([n]) => n === name)) {
            out.timeoutSec = p.timeout;
            out.timeoutMs = p.timeout * 1000;
            out.oack.push([name, value]);
          }
          break;
        case 'tsize':
          if (p.tsize !== undefined && !out.tsizeAsked) {
            out.tsizeAsked = true;
            out.tsize = p.tsize;
            out.oack.push([name, String(p.tsize)]);
          }
          break;
        case COOKIE_OPTION:
          // A netascii upload gets none: its decoder's state between blocks is in no cookie.
          if ((req.opcode === TftpOpcode.Rrq || req.mode === 'octet') && /^[0-9]{1,9}$/.test(value) && out.cookieInterval === undefined) {
            const n = Number(value);
            out.cookieInterval = n === 0 ? cfg.cookieInterval : n;
            out.oack.push([name, String(out.cookieInterval)]);
          }
          break;
        default:
          break;
      }
    }
    return out;
  }

  #checkMode(req: TftpRequest): void {
    if (req.mode === 'mail') throw new TftpIllegalOperationError("illegal TFTP operation: mode 'mail' is not supported");
  }

  async #startRequest(req: TftpRequest, peer: TftpPeer, entry: PeerEntry): Promise<void> {
    this.#checkMode(req);
    const neg = this.#negotiate(req);
    if (req.opcode === TftpOpcode.Rrq) return this.#dispatch({ kind: 'read', req, neg, peer }, entry);
    if (!this.#cfg.writable) throw new TftpAccessError('this server takes no uploads');
    if (neg.tsize !== undefined && neg.tsize > this.#cfg.maxUploadBytes) {
      throw new TftpDiskFullError(`an upload of ${neg.tsize} bytes exceeds the ${this.#cfg.maxUploadBytes} bytes this server takes`);
    }
    return this.#dispatch({ kind: 'write', req, neg, peer }, entry);
  }

  async #startResume(bytes: Uint8Array, peer: TftpPeer, entry: PeerEntry): Promise<void> {
    const cookie = verifyCookie(bytes, this.#cfg.cookieKey, { address: peer.address, now: this.#wallClock() });
    if (cookie.blksize > this.#cfg.maxBlksize) throw new CookieError('invalid', `blksize ${cookie.blksize} is over this server's ${this.#cfg.maxBlksize}`);
    if (cookie.windowsize > this.#cfg.maxWindowSize)
      throw new CookieError('invalid', `windowsize ${cookie.windowsize} is over this server's ${this.#cfg.maxWindowSize}`);
    if (cookie.upload !== undefined) {
      if (!this.#cfg.writable) throw new CookieError('invalid', 'this PE takes no uploads');
      if (cookie.tsize !== undefined && cookie.tsize > this.#cfg.maxUploadBytes) {
        throw new CookieError('invalid', `an upload of ${cookie.tsize} bytes exceeds the ${this.#cfg.maxUploadBytes} bytes this server takes`);
      }
      if (cookie.tsize !== undefined && (cookie.next - 1) * cookie.blksize > cookie.tsize) {
        throw new CookieError('invalid', `block ${cookie.next} is past the upload's ${cookie.tsize} bytes`);
      }
    }
    return this.#dispatch({ kind: 'resume', cookie, peer }, entry);
  }

  /** The admitted transfer runs in this thread or a worker thread; its events come back here. */
  #dispatch(job: Job, entry: PeerEntry): Promise<void> {
    let info: TransferInfo | undefined;
    let t: Transfer | undefined;
    let started = 0;
    // Requests are taken only while running: the runner is there.
    return this.#runner!.run(job, {
      begin: (i, transfer) => {
        info = { id: this.#nextId++, peer: job.peer, ...i };
        t = transfer;
        started = this.#clock.now();
        this.#begin(entry, info, transfer);
      },
      underWay: () => this.#settle(entry),
      end: (end) => {
        this.#settle(entry);
        if (info && t) this.#ended(info, t, end, started);
      },
      cookieIssued: (next) => this.emit('cookie-issued', next),
    });
  }

  #begin(entry: PeerEntry, info: TransferInfo, t: Transfer): void {
    entry.transfer = t;
    this.#active++;
    this.#logger.debug({ transfer: info }, 'transfer started');
    this.emit('transfer-start', info);
    this.emit('active', this.#active);
  }

  #ended(info: TransferInfo, t: Transfer, end: TransferEnd, started: number): void {
    const key = `${info.peer.address}|${info.peer.port}`;
    if (this.#peers.get(key)?.transfer === t) this.#peers.delete(key);
    this.#active--;
    const result = { ...end, durationMs: this.#clock.now() - started };
    if (end.reason === 'done' || end.reason === 'closed' || end.reason === 'moved') this.#logger.debug({ transfer: info.id, result }, 'transfer ended');
    else
      this.#refusals.log('info', { transfer: info.id, path: info.path, peer: info.peer, reason: end.reason, err: end.error?.message }, 'transfer ended early');
    this.emit('transfer-end', info, result);
    this.emit('active', this.#active);
    for (const w of [...this.#endWaiters]) w();
  }
}

/** The worker threads running a server's transfers (none in-thread); for tests. */
export function transferThreadsOf(server: TftpServer): readonly Worker[] {
  const runner = server instanceof TftpServerImpl ? server.runner : undefined;
  return runner instanceof TransferThreads ? runner.workers : [];
}

export function createTftpServer(init: TftpServerInit, components: TftpServerComponents = {}): TftpServer {
  return new TftpServerImpl(init, components);
}

// --- pool element --------------------------------------------------------------

class TftpPoolElementImpl extends EventEmitter<TftpPoolElementEvents> implements TftpPoolElement {
  readonly identifier: number;
  readonly handle: string;
  readonly server: TftpServerImpl;
  readonly #init: TftpPoolElementInit;
  readonly #components: TftpPoolElementComponents;
  readonly #clock: Clock;
  readonly #logger: Logger;
  #pe: PoolElement | undefined;
  #timer: ReturnType<Clock['setTimeout']> | undefined;
  #lastReportAt = Number.NEGATIVE_INFINITY;
  #reported = 0;
  #stopping = false;

  constructor(init: TftpPoolElementInit, components: TftpPoolElementComponents) {
    super();
    if (!init.handle) throw new InvalidOptionError('a pool handle is needed');
    this.#init = init;
    this.#components = components;
    this.#clock = components.clock ?? systemClock;
    this.#logger = (components.logger ?? silentLogger).child({ component: 'tftp-pe' });
    this.handle = init.handle;
    this.identifier = init.identifier !== undefined && init.identifier !== 0 ? init.identifier >>> 0 : randomInt(1, 2 ** 32 - 1);
    this.server = new TftpServerImpl(init, components);
  }

  get poolElement(): PoolElement | undefined {
    return this.#pe;
  }
  get address(): { address: string; port: number } {
    return this.server.address;
  }
  get activeTransfers(): number {
    return this.server.activeTransfers;
  }

  #load(active: number): number {
    return Math.round(Math.min(1, active / this.server.maxTransfers) * LOAD_MAX);
  }

  async start(opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.server.start();
    const init = this.#init;
    const registrars = init.registrars ?? [];
    const pe = createPoolElement(
      {
        handle: init.handle,
        policy: { type: PolicyType.LeastUsed, load: this.#load(this.server.activeTransfers) },
        userTransport: { protocol: 'udp', port: this.server.address.port, addresses: [init.advertiseHost ?? this.server.address.address], transportUse: 0 },
        registrars,
        ...(init.discovery !== undefined ? { discovery: init.discovery } : {}),
        identifier: this.identifier,
        ...(init.registrationLifeMs !== undefined ? { registrationLifeMs: init.registrationLifeMs } : {}),
        ...(init.asapListen !== undefined ? { asapListen: init.asapListen } : {}),
        ...(init.leaveRequestsFrom !== undefined ? { leaveRequestsFrom: init.leaveRequestsFrom } : {}),
      },
      {
        clock: this.#clock,
        ...(this.#components.logger ? { logger: this.#components.logger } : {}),
        ...(this.#components.transports ? { transports: this.#components.transports } : {}),
        ...(this.#components.random ? { random: this.#components.random } : {}),
      },
    );
    pe.on('registered', (url, first) => this.emit('registered', url, first));
    pe.on('error', (err) => this.emit('error', err));
    pe.on('leave-requested', (from) => {
      if (this.listenerCount('leave-requested') > 0) this.emit('leave-requested', from);
      else void this.stop();
    });
    this.#pe = pe;
    this.server.on('active', this.#onActive);
    try {
      await pe.start(opts);
    } catch (err) {
      this.#pe = undefined;
      this.server.off('active', this.#onActive);
      await this.server.close();
      throw err;
    }
  }

  /** Load changes go to the registrar at most once per loadUpdateMs; the last value always gets there. */
  readonly #onActive = (): void => {
    if (this.#timer !== undefined || this.#stopping) return;
    const wait = this.#lastReportAt + (this.#init.loadUpdateMs ?? 1_000) - this.#clock.now();
    if (wait <= 0) this.#report();
    else this.#timer = this.#clock.setTimeout(this.#report, wait);
  };

  readonly #report = (): void => {
    this.#timer = undefined;
    const pe = this.#pe;
    if (!pe || this.#stopping) return;
    const active = this.server.activeTransfers;
    const load = this.#load(active);
    if (load === this.#reported) return;
    this.#reported = load;
    this.#lastReportAt = this.#clock.now();
    pe.updatePolicy({ load }).then(
      () => this.emit('load', active, load),
      (err: unknown) => {
        this.#logger.info({ err: (err as Error).message }, 'load update not registered');
        this.emit('error', err as Error);
      },
    );
  };

  async stop(opts: { drainMs?: number } = {}): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.server.off('active', this.#onActive);
    // The other PEs are looked up while deregistering: both are a round trip to a registrar.
    const [card] = await Promise.all([this.server.activeTransfers > 0 ? this.#leaveCard() : undefined, this.#pe?.stop()]);
    await this.server.close({ ...opts, ...(card ? { card } : {}) });
  }

  /** An ASAP_BUSINESS_CARD naming the other PEs of the pool, for the clients told to move; undefined when none answer in time. */
  async #leaveCard(): Promise<Uint8Array | undefined> {
    const registrars = this.#init.registrars ?? [];
    if (registrars.length === 0) return undefined;
    const pu = createPoolUser(
      { registrars, discovery: false, items: MAX_CARD_ELEMENTS + 1, requestTimeoutMs: LEAVE_RESOLVE_MS, connectTimeoutMs: LEAVE_RESOLVE_MS },
      {
        clock: this.#clock,
        ...(this.#components.logger ? { logger: this.#components.logger } : {}),
        ...(this.#components.transports ? { transports: this.#components.transports } : {}),
      },
    );
    const ac = new AbortController();
    const t = this.#clock.setTimeout(() => ac.abort(), LEAVE_RESOLVE_MS);
    try {
      const others = (await pu.resolve(this.handle, { signal: ac.signal, fresh: true })).filter((e) => e.identifier !== this.identifier);
      if (others.length === 0) return undefined;
      return encodeAsapMessage({ type: AsapMessageType.BusinessCard, handle: handleBytes(this.handle), elements: others.slice(0, MAX_CARD_ELEMENTS) });
    } catch (err) {
      this.#logger.info({ err: (err as Error).message }, 'no business card for the clients: the other PEs could not be resolved');
      return undefined;
    } finally {
      this.#clock.clearTimeout(t);
      await pu.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

export function createTftpPoolElement(init: TftpPoolElementInit, components: TftpPoolElementComponents = {}): TftpPoolElement {
  return new TftpPoolElementImpl(init, components);
}
