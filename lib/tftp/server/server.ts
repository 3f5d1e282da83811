import { pollsFor, type BusyPoll } from '../engine/poll.js';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { randomBytes, randomInt } from 'node:crypto';
import { realpath, stat, unlink } from 'node:fs/promises';
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
import { decodeTftpPacket, encodeTftpPacket, parseTftpOptions } from '../../../protocols/tftp/codec.js';
import {
  TFTP_DEFAULT_BLOCK_SIZE,
  TFTP_MAX_BLOCK_SIZE,
  TFTP_MIN_BLOCK_SIZE,
  TftpErrorCode,
  TftpOpcode,
  type TftpRequest,
} from '../../../protocols/tftp/types.js';
import { COOKIE_OPTION, DEFAULT_COOKIE_INTERVAL, DEFAULT_TFTP_PORT } from '../contract.js';
import {
  DEFAULT_COOKIE_LIFETIME_MS,
  deriveCookieKey,
  encodeCookie,
  randomCookieSecret,
  stateOf,
  verifyCookie,
  type CookieKey,
  type CookieState,
} from './cookie.js';
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
import {
  ChunkCache,
  FileBlockSource,
  MemoryBlockSource,
  lastBlockOf,
  openForRead,
  openForWrite,
  readWhole,
  removeStaleUploads,
  type BlockSource,
  type OpenedFile,
} from './files.js';
import { errorPacket, toNetascii } from '../../../protocols/tftp/packets.js';
import { openTransferSocket, type LeaveNotice, type Transfer, type TransferEnd } from './transfer.js';
import { ReadTransfer, type ReadTransferInit } from './read.js';
import { WriteTransfer } from './write.js';
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

interface AgreedOptions {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /** Seconds as negotiated; 0 when the client did not ask. */
  timeoutSec: number;
  tsizeAsked: boolean;
  tsize: number | undefined;
  cookieInterval: number | undefined;
  /** Acknowledged options, in the client's order, tsize's value still to fill in for a read. */
  oack: Array<[string, string]>;
}

class TftpServerImpl extends EventEmitter<TftpServerEvents> implements TftpServer {
  readonly #init: TftpServerInit;
  readonly #cfg: Config;
  readonly #clock: Clock;
  readonly #wallClock: () => number;
  readonly #logger: Logger;
  readonly #refusals: LogLimiter;
  readonly #cache: ChunkCache;
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
    this.#cache = new ChunkCache(
      positive('cacheBytes', init.cacheBytes, 256 * 2 ** 20, 0),
      positive('chunkBytes', init.chunkBytes, 4 * 2 ** 20, 65536),
      positive('readAheadBytes', init.readAheadBytes, 256 * 2 ** 20, 0),
    );
  }

  get address(): { address: string; port: number } {
    return this.#address;
  }

  get activeTransfers(): number {
    return this.#active;
  }

  get transferBytes(): number {
    return this.#cache.transferBytes;
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
      const stale = await removeStaleUploads(this.#root);
      if (stale.length > 0) this.#logger.info({ removed: stale.length }, 'removed temporary files of uploads a stopped process left behind');
    }
    const { host, port, socketBufferBytes } = this.#cfg;
    const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', recvBufferSize: socketBufferBytes, sendBufferSize: socketBufferBytes });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ port, address: host, exclusive: true }, () => {
        socket.off('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      this.#state = 'closed';
      socket.close();
      throw err;
    });
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
    this.#logger.info({ root: this.#root, address: this.#address }, 'TFTP server listening');
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
    for (const { transfer: t } of [...this.#peers.values()]) if (t && !t.leaving) t.abort(!t.wantsCookies, 'the server is shutting down');
    // Told clients end once quiet; an aborted upload once its temporary file is removed.
    await this.#until(() => this.#active === 0, Number.POSITIVE_INFINITY);
    this.#closeSocket();
    this.#cache.clear();
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
          // Cookies name octet offsets: a netascii download cannot resume from them, so it gets none.
          if (req.opcode === TftpOpcode.Rrq && req.mode === 'octet' && /^[0-9]{1,9}$/.test(value) && out.cookieInterval === undefined) {
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
    if (req.opcode === TftpOpcode.Wrq) return this.#startWrite(req, neg, peer, entry);
    const file = await openForRead(this.#root, req.filename);
    let source: BlockSource;
    try {
      if (req.mode === 'netascii') {
        if (file.size > this.#cfg.maxNetasciiBytes) {
          throw new TftpAccessError(`'${file.path}' is too large for netascii mode (over ${this.#cfg.maxNetasciiBytes} bytes); use octet`);
        }
        const key = `${file.key}#netascii`;
        let bytes = this.#cache.get(key);
        if (bytes === undefined) {
          // The whole file is read before the client answers: only within the read-ahead bound (the text grows by up to 2x).
          if (!this.#cache.mayHold(2 * file.size)) throw new TftpServerBusyError('too much of the served files is in memory; try again later');
          this.#cache.hold(key, 2 * file.size);
          try {
            const text = toNetascii(await readWhole(file));
            bytes = Buffer.from(text.buffer, text.byteOffset, text.length);
          } catch (err) {
            this.#cache.drop(key);
            throw err;
          }
          this.#cache.put(key, bytes);
        } else this.#cache.hold(key, bytes.length);
        await file.handle.close();
        source = new MemoryBlockSource(bytes, neg.blksize, () => this.#cache.drop(key));
      } else source = new FileBlockSource(file, neg.blksize, this.#cache);
    } catch (err) {
      await file.handle.close().catch(() => {});
      throw err;
    }
    const oack = neg.oack.map(([n, v]): [string, string] => (n === 'tsize' ? [n, String(source.size)] : [n, v]));
    const cookies =
      neg.cookieInterval === undefined
        ? undefined
        : {
            template: {
              path: file.path,
              size: file.size,
              mtimeMs: file.mtimeMs,
              blksize: neg.blksize,
              windowsize: neg.windowsize,
              timeout: neg.timeoutSec,
              ...(neg.tsizeAsked ? { tsize: file.size } : {}),
              next: 1,
              interval: neg.cookieInterval,
            } satisfies CookieState,
            seal: this.#sealFor(peer),
          };
    await this.#runRead(
      {
        path: file.path,
        mode: req.mode === 'netascii' ? 'netascii' : 'octet',
        blksize: neg.blksize,
        windowsize: neg.windowsize,
        cookieInterval: neg.cookieInterval,
        resumedAt: undefined,
        size: source.size,
      },
      peer,
      entry,
      source,
      oack.length > 0 ? encodeTftpPacket({ opcode: TftpOpcode.Oack, options: oack }) : undefined,
      1,
      neg.timeoutMs,
      cookies,
    );
  }

  async #startResume(bytes: Uint8Array, peer: TftpPeer, entry: PeerEntry): Promise<void> {
    const st = verifyCookie(bytes, this.#cfg.cookieKey, { address: peer.address, now: this.#wallClock() });
    if (st.blksize > this.#cfg.maxBlksize) throw new CookieError('invalid', `blksize ${st.blksize} is over this server's ${this.#cfg.maxBlksize}`);
    if (st.windowsize > this.#cfg.maxWindowSize)
      throw new CookieError('invalid', `windowsize ${st.windowsize} is over this server's ${this.#cfg.maxWindowSize}`);
    // The cookie is good: the transfer socket is bound while the file is opened (a resume is a client waiting mid-transfer).
    const socket = openTransferSocket(this.#cfg.host, peer, this.#cfg.socketBufferBytes);
    const unused = (): void => {
      socket.then((s) => s.close()).catch(() => {});
    };
    let file: OpenedFile;
    try {
      file = await openForRead(this.#root, st.path);
    } catch (err) {
      unused();
      if (err instanceof TftpRequestError) throw new CookieError('missing', err.message, { cause: err });
      throw err;
    }
    if (file.size !== st.size || file.mtimeMs !== st.mtimeMs) {
      unused();
      await file.handle.close().catch(() => {});
      throw new CookieError(
        'stale',
        `'${st.path}' changed since the cookie was made (size ${st.size} -> ${file.size}, mtime ${new Date(st.mtimeMs).toISOString()} -> ${new Date(file.mtimeMs).toISOString()})`,
      );
    }
    const last = lastBlockOf(file.size, st.blksize);
    if (st.next > last) {
      unused();
      await file.handle.close().catch(() => {});
      throw new CookieError('invalid', `block ${st.next} is past the end of '${st.path}' (last block ${last})`);
    }
    const source = new FileBlockSource(file, st.blksize, this.#cache);
    // Its first blocks are read during the OACK's round trip: a few KiB, for a cookie this PE sealed for this address.
    source.fetch(st.next).catch(() => {});
    // The cookie's options in an OACK the client must ACK: nothing more goes to an unproven address.
    const oack: [string, string][] = [
      ['blksize', String(st.blksize)],
      ['windowsize', String(st.windowsize)],
      ...(st.timeout > 0 ? [['timeout', String(st.timeout)] as [string, string]] : []),
      ...(st.tsize !== undefined ? [['tsize', String(st.tsize)] as [string, string]] : []),
      [COOKIE_OPTION, String(st.interval)],
    ];
    await this.#runRead(
      { path: st.path, mode: 'octet', blksize: st.blksize, windowsize: st.windowsize, cookieInterval: st.interval, resumedAt: st.next, size: file.size },
      peer,
      entry,
      source,
      encodeTftpPacket({ opcode: TftpOpcode.Oack, options: oack }),
      st.next,
      st.timeout > 0 ? st.timeout * 1000 : this.#cfg.retransmitMs,
      { template: stateOf(st), seal: this.#sealFor(peer) },
      socket,
    );
  }

  /** Cookies for this client: bound to its address, valid for the configured lifetime from now. */
  #sealFor(peer: TftpPeer): (state: CookieState) => Uint8Array {
    const { cookieKey, cookieLifetimeMs } = this.#cfg;
    return (state) => {
      this.emit('cookie-issued');
      return encodeCookie(state, cookieKey, { address: peer.address, now: this.#wallClock(), lifetimeMs: cookieLifetimeMs });
    };
  }

  async #runRead(
    info: Omit<TransferInfo, 'id' | 'kind' | 'peer'>,
    peer: TftpPeer,
    entry: PeerEntry,
    source: BlockSource,
    oack: Uint8Array | undefined,
    firstBlock: number,
    timeoutMs: number,
    cookies: ReadTransferInit['cookies'],
    opening?: Promise<Socket>,
  ): Promise<void> {
    let socket: Socket;
    let firstPacket: Buffer | undefined;
    try {
      // Nothing is read ahead before the client answers: an OACK needs no data, a bare RRQ one block.
      const [s, f] = await Promise.allSettled([
        opening ?? openTransferSocket(this.#cfg.host, peer, this.#cfg.socketBufferBytes),
        oack === undefined ? source.readPacket(firstBlock) : Promise.resolve(undefined),
      ]);
      if (s.status === 'rejected') throw s.reason;
      socket = s.value;
      if (f.status === 'rejected') {
        socket.close();
        throw new TftpServerBusyError(`read error: ${(f.reason as Error).message}`, { cause: f.reason });
      }
      firstPacket = f.value;
    } catch (err) {
      await source.close();
      throw err;
    }
    if (this.#state !== 'running') {
      socket.close();
      await source.close();
      if (this.#leaving) throw new TftpLeavingError();
      return;
    }
    const full: TransferInfo = { id: this.#nextId++, kind: 'read', peer, ...info };
    const started = this.#clock.now();
    const t: ReadTransfer = new ReadTransfer({
      socket,
      source,
      windowsize: info.windowsize,
      timeoutMs,
      minTimeoutMs: this.#cfg.minRetransmitMs,
      maxRetries: this.#cfg.maxRetries,
      oack,
      firstPacket,
      handshakeMs: this.#cfg.handshakeMs,
      busyPoll: pollsFor(this.#cfg.busyPoll, peer.address),
      onUnderWay: () => this.#settle(entry),
      firstBlock,
      cookies,
      clock: this.#clock,
      onEnd: (end) => {
        this.#settle(entry);
        this.#ended(full, t, end, started);
      },
    });
    this.#begin(entry, full, t);
    t.start();
  }

  async #startWrite(req: TftpRequest, neg: AgreedOptions, peer: TftpPeer, entry: PeerEntry): Promise<void> {
    if (!this.#cfg.writable) throw new TftpAccessError('this server takes no uploads');
    if (neg.tsize !== undefined && neg.tsize > this.#cfg.maxUploadBytes) {
      throw new TftpDiskFullError(`an upload of ${neg.tsize} bytes exceeds the ${this.#cfg.maxUploadBytes} bytes this server takes`);
    }
    const target = await openForWrite(this.#root, req.filename, this.#cfg.overwrite, `${process.pid}-${randomBytes(6).toString('hex')}`);
    let socket: Socket;
    try {
      socket = await openTransferSocket(this.#cfg.host, peer, this.#cfg.socketBufferBytes);
    } catch (err) {
      await target.handle.close().catch(() => {});
      throw err;
    }
    if (this.#state !== 'running') {
      socket.close();
      await target.handle.close().catch(() => {});
      await unlink(target.temp).catch(() => {});
      if (this.#leaving) throw new TftpLeavingError();
      return;
    }
    const full: TransferInfo = {
      id: this.#nextId++,
      kind: 'write',
      path: target.path,
      peer,
      mode: req.mode === 'netascii' ? 'netascii' : 'octet',
      blksize: neg.blksize,
      windowsize: neg.windowsize,
      cookieInterval: undefined,
      resumedAt: undefined,
      size: neg.tsize,
    };
    const started = this.#clock.now();
    const t: WriteTransfer = new WriteTransfer({
      socket,
      target,
      blksize: neg.blksize,
      windowsize: neg.windowsize,
      timeoutMs: neg.timeoutMs,
      maxRetries: this.#cfg.maxRetries,
      oack: neg.oack.length > 0 ? encodeTftpPacket({ opcode: TftpOpcode.Oack, options: neg.oack }) : undefined,
      netascii: req.mode === 'netascii',
      maxBytes: this.#cfg.maxUploadBytes,
      overwrite: this.#cfg.overwrite,
      handshakeMs: this.#cfg.handshakeMs,
      onUnderWay: () => this.#settle(entry),
      clock: this.#clock,
      onEnd: (end) => {
        this.#settle(entry);
        this.#ended(full, t, end, started);
      },
    });
    this.#begin(entry, full, t);
    t.start();
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
