/**
 * Runs admitted transfers: opens the file and the transfer's own socket, and
 * drives the read or write adapter. The server's request port, admission
 * and events stay with the server; this part runs in the server's thread or
 * in a worker thread (workers.ts), the same code either way.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:dgram';
import { unlink } from 'node:fs/promises';
import { threadId } from 'node:worker_threads';
import { pollsFor, type BusyPoll } from '../engine/poll.js';
import type { Clock } from '../../clock.js';
import { encodeTftpPacket } from '../../../protocols/tftp/codec.js';
import { TftpOpcode, type TftpRequest } from '../../../protocols/tftp/types.js';
import { toNetascii } from '../../../protocols/tftp/packets.js';
import { COOKIE_OPTION, RESUME_ACK_OPTION } from '../contract.js';
import { encodeCookie, stateOf, type CookieKey, type CookieState, type OpenedCookie } from './cookie.js';
import { CookieError, TftpAccessError, TftpRequestError, TftpServerBusyError, TftpLeavingError } from './errors.js';
import {
  ChunkCache,
  FileBlockSource,
  MemoryBlockSource,
  lastBlockOf,
  openForRead,
  openForResume,
  openForWrite,
  readWhole,
  type BlockSource,
  type OpenedFile,
  type WriteTarget,
} from './files.js';
import { openTransferSocket, type Transfer, type TransferEnd } from './transfer.js';
import { ReadTransfer, type ReadTransferInit } from './read.js';
import { WriteTransfer, type WriteTransferInit } from './write.js';
import type { TftpPeer, TransferInfo } from './types.js';

/** Options the server agreed to for a request (RFC 2347 negotiation). */
export interface AgreedOptions {
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

/** An admitted transfer: plain data, so it can go to another thread. */
export type Job =
  | { kind: 'read'; req: TftpRequest; neg: AgreedOptions; peer: TftpPeer }
  | { kind: 'write'; req: TftpRequest; neg: AgreedOptions; peer: TftpPeer }
  /** A verified cookie's state. */
  | { kind: 'resume'; cookie: OpenedCookie; peer: TftpPeer };

/** What a transfer tells the server. */
export interface JobHooks {
  /** The transfer starts (before its first packet goes); `temp` is an upload's temporary file. */
  begin(info: Omit<TransferInfo, 'id' | 'peer'>, t: Transfer, temp?: string): void;
  /** The client answered once. */
  underWay(): void;
  end(end: TransferEnd): void;
  cookieIssued(next: number): void;
}

/** Where admitted transfers run: this thread (TransferRunner) or worker threads (TransferThreads). */
export interface TransferBackend {
  run(job: Job, hooks: JobHooks): Promise<void>;
  closing(leaving: boolean): void;
  /** Bytes of file contents the running transfers hold. */
  readonly transferBytes: number;
  /** After every transfer has ended. */
  close(): Promise<void>;
}

export interface RunnerConfig {
  host: string;
  cookieKey: CookieKey;
  cookieLifetimeMs: number;
  overwrite: boolean;
  retransmitMs: number;
  minRetransmitMs: number;
  maxRetries: number;
  busyPoll: BusyPoll;
  maxUploadBytes: number;
  maxNetasciiBytes: number;
  socketBufferBytes: number;
  handshakeMs: number;
  cacheBytes: number;
  chunkBytes: number;
  readAheadBytes: number;
}

export class TransferRunner implements TransferBackend {
  readonly #root: string;
  readonly #cfg: RunnerConfig;
  readonly #clock: Clock;
  readonly #wallClock: () => number;
  readonly #cache: ChunkCache;
  #open = true;
  #leaving = false;

  constructor(root: string, cfg: RunnerConfig, components: { clock: Clock; wallClock: () => number }) {
    this.#root = root;
    this.#cfg = cfg;
    this.#clock = components.clock;
    this.#wallClock = components.wallClock;
    this.#cache = new ChunkCache(cfg.cacheBytes, cfg.chunkBytes, cfg.readAheadBytes);
  }

  get transferBytes(): number {
    return this.#cache.transferBytes;
  }

  /** The server closes: setups still under way start nothing (a leaving server's clients get the leaving ERROR). */
  closing(leaving: boolean): void {
    this.#open = false;
    this.#leaving = leaving;
  }

  close(): Promise<void> {
    this.#cache.clear();
    return Promise.resolve();
  }

  /** Resolves once the transfer has begun (or, the server closing, was not started); rejects with why it was refused. */
  run(job: Job, hooks: JobHooks): Promise<void> {
    switch (job.kind) {
      case 'read':
        return this.#read(job.req, job.neg, job.peer, hooks);
      case 'write':
        return this.#write(job.req, job.neg, job.peer, hooks);
      case 'resume':
        return this.#resume(job.cookie, job.peer, hooks);
    }
  }

  async #read(req: TftpRequest, neg: AgreedOptions, peer: TftpPeer, hooks: JobHooks): Promise<void> {
    const file = await openForRead(this.#root, req.filename);
    let source: BlockSource;
    try {
      source = req.mode === 'netascii' ? await this.#netasciiSource(file, neg.blksize) : new FileBlockSource(file, neg.blksize, this.#cache);
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
              ...(neg.tsizeAsked ? { tsize: source.size } : {}),
              next: 1,
              interval: neg.cookieInterval,
              ...(req.mode === 'netascii' ? { netascii: true as const } : {}),
            } satisfies CookieState,
            seal: this.#sealFor(peer, hooks),
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
      hooks,
      source,
      oack.length > 0 ? encodeTftpPacket({ opcode: TftpOpcode.Oack, options: oack }) : undefined,
      1,
      neg.timeoutMs,
      cookies,
    );
  }

  /** The file converted to netascii, held in the cache; closes the file. Every PE converts a file alike, so a block number names the same bytes at each. */
  async #netasciiSource(file: OpenedFile, blksize: number): Promise<BlockSource> {
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
    return new MemoryBlockSource(bytes, blksize, () => this.#cache.drop(key));
  }

  async #resume(st: OpenedCookie, peer: TftpPeer, hooks: JobHooks): Promise<void> {
    if (st.upload !== undefined) return this.#resumeWrite(st, st.upload, peer, hooks);
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
    let source: BlockSource;
    try {
      source = st.netascii ? await this.#netasciiSource(file, st.blksize) : new FileBlockSource(file, st.blksize, this.#cache);
    } catch (err) {
      unused();
      await file.handle.close().catch(() => {});
      throw err;
    }
    const last = lastBlockOf(source.size, st.blksize);
    if (st.next > last) {
      unused();
      await source.close();
      throw new CookieError('invalid', `block ${st.next} is past the end of '${st.path}' (last block ${last})`);
    }
    // Its first blocks are read during the OACK's round trip: a few KiB, for a cookie this PE sealed for this address.
    source.fetch(st.next).catch(() => {});
    await this.#runRead(
      {
        path: st.path,
        mode: st.netascii ? 'netascii' : 'octet',
        blksize: st.blksize,
        windowsize: st.windowsize,
        cookieInterval: st.interval,
        resumedAt: st.next,
        size: source.size,
      },
      peer,
      hooks,
      source,
      resumeOack(st, true),
      st.next,
      st.timeout > 0 ? st.timeout * 1000 : this.#cfg.retransmitMs,
      { template: stateOf(st), seal: this.#sealFor(peer, hooks) },
      socket,
    );
  }

  /** Cookies for this client: bound to its address, valid for the configured lifetime from now. */
  #sealFor(peer: TftpPeer, hooks: JobHooks): (state: CookieState) => Uint8Array {
    const { cookieKey, cookieLifetimeMs } = this.#cfg;
    return (state) => {
      hooks.cookieIssued(state.next);
      return encodeCookie(state, cookieKey, { address: peer.address, now: this.#wallClock(), lifetimeMs: cookieLifetimeMs });
    };
  }

  async #runRead(
    info: Omit<TransferInfo, 'id' | 'kind' | 'peer' | 'threadId'>,
    peer: TftpPeer,
    hooks: JobHooks,
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
    if (!this.#open) {
      socket.close();
      await source.close();
      if (this.#leaving) throw new TftpLeavingError();
      return;
    }
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
      onUnderWay: () => hooks.underWay(),
      firstBlock,
      // A resume's OACK names RESUME_ACK_OPTION.
      resumeAck: info.resumedAt !== undefined,
      cookies,
      clock: this.#clock,
      onEnd: (end) => hooks.end(end),
    });
    hooks.begin({ kind: 'read', threadId, ...info }, t);
    t.start();
  }

  async #write(req: TftpRequest, neg: AgreedOptions, peer: TftpPeer, hooks: JobHooks): Promise<void> {
    const target = await openForWrite(this.#root, req.filename, this.#cfg.overwrite, uploadTag());
    const netascii = req.mode === 'netascii';
    const cookies =
      neg.cookieInterval === undefined || netascii
        ? undefined
        : {
            template: {
              path: target.path,
              size: 0,
              mtimeMs: 0,
              blksize: neg.blksize,
              windowsize: neg.windowsize,
              timeout: neg.timeoutSec,
              ...(neg.tsize !== undefined ? { tsize: neg.tsize } : {}),
              next: 1,
              interval: neg.cookieInterval,
              upload: target.tag,
            } satisfies CookieState,
            seal: this.#sealFor(peer, hooks),
          };
    await this.#runWrite(
      target,
      {
        path: target.path,
        mode: netascii ? 'netascii' : 'octet',
        blksize: neg.blksize,
        windowsize: neg.windowsize,
        cookieInterval: cookies ? neg.cookieInterval : undefined,
        resumedAt: undefined,
        size: neg.tsize,
      },
      peer,
      hooks,
      neg.oack.length > 0 ? encodeTftpPacket({ opcode: TftpOpcode.Oack, options: neg.oack }) : undefined,
      neg.timeoutMs,
      1,
      cookies,
    );
  }

  /** An upload cookie: the temporary file, cut back to the bytes the cookie names, becomes this PE's, and the client sends from `next` on. */
  async #resumeWrite(st: OpenedCookie, fromTag: string, peer: TftpPeer, hooks: JobHooks): Promise<void> {
    const tag = uploadTag();
    const target = await openForResume(this.#root, st.path, this.#cfg.overwrite, fromTag, tag, (st.next - 1) * st.blksize);
    await this.#runWrite(
      target,
      { path: st.path, mode: 'octet', blksize: st.blksize, windowsize: st.windowsize, cookieInterval: st.interval, resumedAt: st.next, size: st.tsize },
      peer,
      hooks,
      resumeOack(st),
      st.timeout > 0 ? st.timeout * 1000 : this.#cfg.retransmitMs,
      st.next,
      { template: { ...stateOf(st), upload: tag }, seal: this.#sealFor(peer, hooks) },
    );
  }

  async #runWrite(
    target: WriteTarget,
    info: Omit<TransferInfo, 'id' | 'kind' | 'peer' | 'threadId'>,
    peer: TftpPeer,
    hooks: JobHooks,
    oack: Uint8Array | undefined,
    timeoutMs: number,
    firstBlock: number,
    cookies: WriteTransferInit['cookies'],
  ): Promise<void> {
    let socket: Socket;
    try {
      socket = await openTransferSocket(this.#cfg.host, peer, this.#cfg.socketBufferBytes);
    } catch (err) {
      await target.handle.close().catch(() => {});
      await unlink(target.temp).catch(() => {});
      throw err;
    }
    if (!this.#open) {
      socket.close();
      await target.handle.close().catch(() => {});
      await unlink(target.temp).catch(() => {});
      if (this.#leaving) throw new TftpLeavingError();
      return;
    }
    const t: WriteTransfer = new WriteTransfer({
      socket,
      target,
      blksize: info.blksize,
      windowsize: info.windowsize,
      timeoutMs,
      maxRetries: this.#cfg.maxRetries,
      oack,
      netascii: info.mode === 'netascii',
      maxBytes: this.#cfg.maxUploadBytes,
      overwrite: this.#cfg.overwrite,
      handshakeMs: this.#cfg.handshakeMs,
      firstBlock,
      cookies,
      onUnderWay: () => hooks.underWay(),
      clock: this.#clock,
      onEnd: (end) => hooks.end(end),
    });
    hooks.begin({ kind: 'write', threadId, ...info }, t, target.temp);
    t.start();
  }
}

/** PID-RANDOM: the PID tells a restarted PE whose temporary files may be stale. */
function uploadTag(): string {
  return `${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** The cookie's options in an OACK the client must answer: nothing more goes to an unproven address. */
function resumeOack(st: CookieState, resumeAck = false): Uint8Array {
  const oack: [string, string][] = [
    ['blksize', String(st.blksize)],
    ['windowsize', String(st.windowsize)],
    ...(st.timeout > 0 ? [['timeout', String(st.timeout)] as [string, string]] : []),
    ...(st.tsize !== undefined ? [['tsize', String(st.tsize)] as [string, string]] : []),
    [COOKIE_OPTION, String(st.interval)],
    // A download's client may answer with the ACK of a later block it holds (make-before-break).
    ...(resumeAck ? [[RESUME_ACK_OPTION, '1'] as [string, string]] : []),
  ];
  return encodeTftpPacket({ opcode: TftpOpcode.Oack, options: oack });
}
