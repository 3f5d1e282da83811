/**
 * One upload (WRQ, or a resume from a cookie; only on a writable server): an
 * adapter of the engine's WindowReceiver (DATA lock-step or in RFC 7440
 * windows) that buffers it into large writes to a temporary file, and
 * renames that onto the target only when the last block is in, so a failed
 * upload leaves nothing behind. With cookies, each time the written bytes
 * pass a multiple of the cookie spacing they are synced and a cookie names
 * the block after them, so another PE serving the same root can take the
 * temporary file over. Until the first DATA the client's address is
 * unproven: its ACK 0 (or OACK) goes again only when the WRQ (or echo) does,
 * and the transfer is dropped after the handshake deadline.
 */
import type { Socket } from 'node:dgram';
import { link, rename, unlink } from 'node:fs/promises';
import type { Clock, TimerHandle } from '../../clock.js';
import { peerError } from '../../../protocols/tftp/codec.js';
import { TftpErrorCode, TftpOpcode } from '../../../protocols/tftp/types.js';
import { TftpDiskFullError, TftpDiskTimeoutError, TftpFileExistsError, TftpIllegalOperationError, TftpRequestError } from './errors.js';
import { ackPacket, errorPacket, NetasciiDecoder } from '../../../protocols/tftp/packets.js';
import { WindowReceiver } from '../engine/receiver.js';
import type { WriteTarget } from './files.js';
import { cookieDatagram, DiskWait, type LeaveNotice, type Transfer, type TransferCookies, type TransferEnd } from './transfer.js';

export interface WriteTransferInit {
  socket: Socket;
  target: WriteTarget;
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  maxRetries: number;
  /** OACK to send first instead of ACK 0. */
  oack: Uint8Array | undefined;
  netascii: boolean;
  maxBytes: number;
  /** Replace an existing file; else the upload fails (TFTP error 6) if the name was taken meanwhile. */
  overwrite: boolean;
  /** The client must send its first DATA within this long. */
  handshakeMs: number;
  /** The first block expected: 1, or the block a cookie names (the file then holds (firstBlock - 1) x blksize bytes). */
  firstBlock: number;
  /** State cookies (octet uploads whose client asked). */
  cookies: TransferCookies | undefined;
  /** The client answered once. */
  onUnderWay?: () => void;
  clock: Clock;
  onEnd: (end: TransferEnd) => void;
}

const WRITE_CHUNK = 1 << 20;
/** Cookies of an upload are this far apart at least: each costs a sync. */
const MIN_COOKIE_SPACING = 4 << 20;
/** ACKs wait while this much is queued for the disk: the client slows to the disk's pace. */
const MAX_QUEUED = 16 << 20;

/** Collects blocks into large buffers and writes them in order; with `syncEvery`, syncs and reports the written bytes each time they pass a multiple of it. */
class UploadWriter {
  readonly #target: WriteTarget;
  #buf = Buffer.allocUnsafe(WRITE_CHUNK);
  #used = 0;
  #position: number;
  /** Chunks not yet handed to the disk: held here, not by the chain's callbacks, so abandon() can drop them. */
  readonly #waiting: { chunk: Buffer; at: number }[] = [];
  #chain: Promise<void> = Promise.resolve();
  readonly #syncEvery: number;
  #syncedAt: number;
  queued = 0;
  failure: Error | undefined;
  onDrain: (() => void) | undefined;
  /** The file holds `position` bytes, synced. */
  onDurable: ((position: number) => void) | undefined;
  /** The disk completed a write, sync or close. */
  onProgress: (() => void) | undefined;

  constructor(target: WriteTarget, position: number, syncEvery: number) {
    this.#target = target;
    this.#position = this.#syncedAt = position;
    this.#syncEvery = syncEvery;
  }

  push(data: Uint8Array): void {
    if (this.failure) return;
    let off = 0;
    while (off < data.length) {
      const n = Math.min(data.length - off, this.#buf.length - this.#used);
      this.#buf.set(data.subarray(off, off + n), this.#used);
      this.#used += n;
      off += n;
      if (this.#used === this.#buf.length) this.#flush();
    }
  }

  #flush(): void {
    if (this.#used === 0) return;
    const chunk = this.#buf.subarray(0, this.#used);
    this.#waiting.push({ chunk, at: this.#position });
    this.#position += chunk.length;
    this.queued += chunk.length;
    this.#buf = Buffer.allocUnsafe(WRITE_CHUNK);
    this.#used = 0;
    this.#chain = this.#chain.then(this.#writeNext);
  }

  readonly #writeNext = async (): Promise<void> => {
    const job = this.#waiting.shift();
    if (!job || this.failure) return;
    const { chunk, at } = job;
    const end = at + chunk.length;
    try {
      let done = 0;
      while (done < chunk.length) {
        done += (await this.#target.handle.write(chunk, done, chunk.length - done, at + done)).bytesWritten;
        // Abandoned meanwhile: nothing more goes to the disk.
        if (this.failure) return;
        this.onProgress?.();
      }
      if (this.#syncEvery > 0 && Math.floor(end / this.#syncEvery) > Math.floor(this.#syncedAt / this.#syncEvery)) await this.#sync(end);
    } catch (err) {
      this.failure ??= err as Error;
    }
    this.queued -= chunk.length;
    this.onDrain?.();
  };

  /** Another PE may take over what a cookie names: on the disk (or the file server) before it is named. */
  async #sync(end: number): Promise<void> {
    await this.#target.handle.datasync();
    this.onProgress?.();
    this.#syncedAt = end;
    this.onDurable?.(end);
  }

  /** Writes and syncs all pushed so far; resolves to the bytes the file holds. */
  async settle(): Promise<number> {
    this.#flush();
    const end = this.#position;
    // The chain never rejects: discard() and keep() wait on it.
    this.#chain = this.#chain.then(async () => {
      if (this.failure || this.#syncedAt >= end) return;
      await this.#sync(end).catch((err: unknown) => {
        this.failure ??= err as Error;
      });
    });
    await this.#chain;
    if (this.failure) throw this.failure;
    return end;
  }

  /** Writes the rest, syncs and closes; the caller renames. */
  async finish(): Promise<void> {
    this.#flush();
    await this.#chain;
    if (this.failure) throw this.failure;
    await this.#target.handle.datasync();
    this.onProgress?.();
    if (this.failure) throw this.failure;
    await this.#target.handle.close();
    this.onProgress?.();
  }

  async discard(): Promise<void> {
    await this.#chain;
    await this.#target.handle.close().catch(() => {});
    await unlink(this.#target.temp).catch(() => {});
  }

  /** Closes the file and leaves it for another PE to resume. */
  async keep(): Promise<void> {
    await this.#chain;
    await this.#target.handle.close().catch(() => {});
  }

  /**
   * The disk does not answer: what is queued goes now, nothing more is
   * written or reported. A write or sync already under way cannot be called
   * back: discard() and keep() still wait for it.
   */
  abandon(reason: Error): void {
    this.failure ??= reason;
    this.#waiting.length = 0;
    this.queued = 0;
    this.#buf = Buffer.alloc(0);
    this.#used = 0;
    this.onDrain = this.onDurable = this.onProgress = undefined;
  }
}

export class WriteTransfer implements Transfer {
  readonly wantsCookies: boolean;
  readonly #init: WriteTransferInit;
  readonly #socket: Socket;
  readonly #clock: Clock;
  readonly #writer: UploadWriter;
  readonly #netascii: NetasciiDecoder | undefined;
  readonly #engine: WindowReceiver;
  #bytes = 0;
  /** The handshake's deadline (the engine keeps the transfer's own timer). */
  #timer: TimerHandle | undefined;
  /** 'receiving' -> 'storing' (last block in, writing) -> 'dallying' (re-ACKing a lost final ACK) -> 'done'. */
  #state: 'receiving' | 'storing' | 'dallying' | 'done' = 'receiving';
  /** leave() took it: the written bytes are being synced for the cookie that sends the client on. */
  #leaving = false;
  /** Bytes in the file before this transfer's first block. */
  readonly #offset: number;
  /** The transfer gives up on a disk that took nothing this long while it waited on it: as long as on a silent client. */
  readonly #diskGiveUpMs: number;
  readonly #disk: DiskWait;
  readonly #onEnd: (end: TransferEnd) => void;

  constructor(init: WriteTransferInit) {
    this.#init = init;
    this.#socket = init.socket;
    this.#clock = init.clock;
    this.wantsCookies = init.cookies !== undefined;
    this.#offset = (init.firstBlock - 1) * init.blksize;
    const c = init.cookies;
    this.#diskGiveUpMs = init.timeoutMs * (init.maxRetries + 1);
    // Before any cookie the file holds only what it held at the start, synced (nothing, or what a resume's
    // cookie named): a keep-alive then names firstBlock. The bound: as long as the transfer waits on a silent client.
    this.#disk = new DiskWait(
      init.socket,
      init.clock,
      this.#diskGiveUpMs,
      () => this.#state === 'storing' || (this.#state === 'receiving' && (this.#engine.ackHeld || this.#leaving)),
      () => (c ? cookieDatagram(c, init.firstBlock) : undefined),
      (idleMs) => this.#diskTimedOut(idleMs),
    );
    this.#onEnd = (end) => init.onEnd(this.#disk.report(end));
    this.#writer = new UploadWriter(init.target, this.#offset, c ? Math.max(c.template.interval * init.blksize, MIN_COOKIE_SPACING) : 0);
    this.#writer.onDurable = (position) => {
      if (this.#state === 'receiving' && !this.#leaving) this.#sendCookie(Math.floor(position / init.blksize) + 1);
    };
    this.#netascii = init.netascii ? new NetasciiDecoder() : undefined;
    this.#engine = new WindowReceiver(
      {
        windowsize: init.windowsize,
        blksize: init.blksize,
        firstBlock: init.firstBlock,
        timeoutMs: init.timeoutMs,
        maxRetries: init.maxRetries,
        dallyMs: 2 * init.timeoutMs,
      },
      {
        sendAck: (n) => this.#socket.send(ackPacket(n)),
        deliver: this.#deliver,
        oversize: (n, len) => {
          const e = new TftpIllegalOperationError(`illegal TFTP operation: DATA block of ${len} bytes exceeds the blksize ${init.blksize}`);
          this.#fail({ reason: 'error', bytes: this.#bytes, lastBlock: n - 1, error: e }, errorPacket(e.tftpCode, e.message));
        },
        mayAck: () => {
          if (this.#writer.queued <= MAX_QUEUED) return true;
          // A client sending on past the held ACK does not start the wait again.
          if (!this.#engine.ackHeld) this.#waitOnDisk();
          return false;
        },
        complete: (last) => void this.#store(last),
        gone: () => {
          if (!this.#leaving) this.#fail({ reason: 'timeout', bytes: this.#bytes, lastBlock: this.#engine.expected - 1 });
        },
        closed: () => this.#close(),
      },
      { clock: init.clock },
    );
    this.#socket.on('message', this.#onMessage);
    this.#socket.on('error', this.#onSocketError);
    this.#writer.onProgress = () => this.#disk.progress();
    this.#writer.onDrain = () => {
      if (this.#engine.ackHeld && this.#writer.queued <= MAX_QUEUED / 2 && this.#state === 'receiving') this.#engine.release();
    };
  }

  start(): void {
    this.#socket.send(this.#init.oack ?? ackPacket(0));
    this.#timer = this.#clock.setTimeout(this.#onHandshakeTimeout, this.#init.handshakeMs);
  }

  repeat(): void {
    if (this.#state === 'receiving' && !this.#engine.started) this.#socket.send(this.#init.oack ?? ackPacket(0));
  }

  get leaving(): boolean {
    return this.#leaving;
  }

  /**
   * The server leaves: with cookies, the bytes received are written and
   * synced, then a cookie naming the block after them, the card and the
   * leaving ERROR go to the client (twice: one lost datagram must not cost
   * it a timeout), and the temporary file stays for the PE it resumes at.
   */
  leave(notice: LeaveNotice): boolean {
    if (!this.wantsCookies || this.#state !== 'receiving') return false;
    if (this.#leaving) return true;
    if (!this.#engine.started) {
      // An unproven address gets one small packet; nothing of this transfer is worth keeping.
      this.#fail({ reason: 'moved', bytes: 0, lastBlock: this.#init.firstBlock - 1 }, notice.error);
      return true;
    }
    this.#leaving = true;
    this.#engine.stop();
    // Bounded, but no keep-alives: the client is about to be sent on.
    this.#disk.wait(false);
    this.#writer.settle().then(
      (position) => {
        if (this.#state !== 'receiving') return;
        const cookie = cookieDatagram(this.#init.cookies!, Math.floor(position / this.#init.blksize) + 1);
        const packets = [cookie, ...(notice.card ? [notice.card] : []), notice.error];
        const end: TransferEnd = { reason: 'moved', bytes: this.#bytes, lastBlock: this.#engine.expected - 1 };
        this.#close(undefined, true);
        const socket = this.#socket;
        const twice = [...packets, ...packets];
        let left = twice.length;
        for (const p of twice)
          socket.send(p, () => {
            if (--left === 0) socket.close();
          });
        this.#endAfter(this.#writer.keep(), end);
      },
      (err: unknown) => {
        this.#leaving = false;
        this.#writeFailed(err as Error);
      },
    );
    return true;
  }

  #sendCookie(next: number): void {
    const c = this.#init.cookies;
    if (!c) return;
    const cookie = (this.#disk.latest = cookieDatagram(c, next));
    this.#socket.send(cookie);
  }

  /** The transfer waits on the disk from now on (a held ACK, storing): keep-alives, and a bound. */
  #waitOnDisk(): void {
    this.#disk.wait(this.wantsCookies);
  }

  /** Held, the slot, the socket and the queue would stay for good: the client is told, and fails over. */
  #diskTimedOut(idleMs: number): void {
    const e = new TftpDiskTimeoutError(idleMs);
    const end: TransferEnd = { reason: 'disk-timeout', bytes: this.#bytes, lastBlock: this.#engine.expected - 1, error: e };
    this.#close(errorPacket(e.tftpCode, e.message));
    this.#writer.abandon(e);
    // The temporary file goes once the write under way settles, if ever; the slot goes now.
    void this.#writer.discard();
    this.#onEnd(end);
  }

  abort(notify: boolean, message: string, resumable = false): void {
    if (this.#state === 'done') return;
    if (this.#state === 'dallying') {
      this.#close();
      return;
    }
    const end: TransferEnd = { reason: 'closed', bytes: this.#bytes, lastBlock: this.#engine.expected - 1 };
    if (resumable && this.wantsCookies && this.#state === 'receiving' && this.#engine.started && !this.#leaving) {
      // The client resumes at another PE from its last cookie: what is written stays, synced, for that PE.
      this.#close();
      this.#endAfter(
        this.#writer
          .settle()
          .catch(() => {})
          .then(() => this.#writer.keep()),
        end,
      );
      return;
    }
    this.#fail(end, notify ? errorPacket(TftpErrorCode.NotDefined, message) : undefined);
  }

  readonly #onMessage = (msg: Buffer): void => {
    if (this.#state === 'done' || this.#leaving) return;
    if (msg.length >= 4 && msg[0] === 0 && msg[1] === TftpOpcode.Data) this.#engine.data((msg[2]! << 8) | msg[3]!, msg.subarray(4));
    else this.#other(msg);
  };

  readonly #onSocketError = (err: Error): void => {
    if (this.#state === 'done' || this.#leaving) return;
    if (this.#state === 'dallying') {
      this.#close();
      return;
    }
    const gone = (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
    this.#fail({ reason: gone ? 'peer-gone' : 'error', bytes: this.#bytes, lastBlock: this.#engine.expected - 1, ...(gone ? {} : { error: err }) });
  };

  /** The engine's next block in order: to the file. */
  readonly #deliver = (n: number, data: Uint8Array): boolean => {
    if (n === this.#init.firstBlock) {
      if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#init.onUnderWay?.();
      // A resume: the echoed cookie names the temporary file by the tag it had; this one names it by ours.
      if (n > 1) this.#sendCookie(n);
    }
    this.#bytes += data.length;
    if (this.#offset + this.#bytes > this.#init.maxBytes) {
      const e = new TftpDiskFullError(`upload exceeds the ${this.#init.maxBytes} bytes this server takes`);
      this.#fail({ reason: 'error', bytes: this.#bytes, lastBlock: n - 1, error: e }, errorPacket(e.tftpCode, e.message));
      return false;
    }
    this.#writer.push(this.#netascii ? this.#netascii.push(data) : data);
    if (this.#writer.failure) {
      this.#writeFailed(this.#writer.failure);
      return false;
    }
    return true;
  };

  async #store(last: number): Promise<void> {
    this.#state = 'storing';
    this.#waitOnDisk();
    try {
      if (this.#netascii) this.#writer.push(this.#netascii.end());
      await this.#writer.finish();
      // Given up on the disk meanwhile: the client was told it failed.
      if (this.#state !== 'storing') return;
      const { temp, target, path } = this.#init.target;
      if (this.#init.overwrite) await rename(temp, target);
      else {
        // link() fails if the name exists: of two uploads of one name, exactly one wins.
        try {
          await link(temp, target);
          this.#disk.progress();
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new TftpFileExistsError(`'${path}' already exists`, { cause: err });
          throw err;
        }
        await unlink(temp).catch(() => {});
      }
    } catch (err) {
      this.#writeFailed(err as Error);
      return;
    }
    if (this.#state !== 'storing') return;
    this.#state = 'dallying';
    // The final ACK only now the file is in place; the engine stays a while to re-ACK the final DATA if it is lost.
    this.#engine.finish();
    this.#onEnd({ reason: 'done', bytes: this.#bytes, lastBlock: last });
  }

  #writeFailed(err: Error): void {
    const code = (err as NodeJS.ErrnoException).code;
    const e =
      err instanceof TftpRequestError
        ? err
        : code === 'ENOSPC' || code === 'EDQUOT'
          ? new TftpDiskFullError('disk full', { cause: err })
          : new TftpRequestError('RSP_ERR_TFTP_WRITE', TftpErrorCode.NotDefined, `write error: ${code ?? err.message}`, { cause: err });
    this.#fail({ reason: 'error', bytes: this.#bytes, lastBlock: this.#engine.expected - 1, error: e }, errorPacket(e.tftpCode, e.message));
  }

  #other(msg: Buffer): void {
    if (msg.length > 0 && msg[0] !== 0) return;
    if (this.#state === 'dallying') return;
    if (msg.length >= 2 && msg[1] === TftpOpcode.Error) {
      const { code, message } = peerError(msg);
      this.#fail({
        reason: 'peer-error',
        bytes: this.#bytes,
        lastBlock: this.#engine.expected - 1,
        error: new TftpRequestError('RSP_ERR_TFTP_PEER', code, message),
      });
      return;
    }
    const what = msg.length >= 4 ? `opcode ${(msg[0]! << 8) | msg[1]!} during an upload` : 'truncated packet';
    const e = new TftpIllegalOperationError(`illegal TFTP operation: ${what}`);
    this.#fail({ reason: 'error', bytes: this.#bytes, lastBlock: this.#engine.expected - 1, error: e }, errorPacket(e.tftpCode, e.message));
  }

  /** No DATA by the handshake deadline: nothing is resent to an unproven address. */
  readonly #onHandshakeTimeout = (): void => {
    this.#timer = undefined;
    if (this.#state === 'receiving' && !this.#engine.started) this.#fail({ reason: 'timeout', bytes: 0, lastBlock: 0 });
  };

  #fail(end: TransferEnd, lastPacket?: Uint8Array): void {
    if (this.#state === 'done' || this.#state === 'dallying') return;
    this.#close(lastPacket);
    // The end is reported once the temporary file is gone.
    this.#endAfter(this.#writer.discard(), end);
  }

  /** Reports `end` once `work` (the file's discard or keep) is done, or after the give-up time on a disk that does not answer. */
  #endAfter(work: Promise<void>, end: TransferEnd): void {
    let timer: TimerHandle | undefined = this.#clock.setTimeout(() => {
      timer = undefined;
      this.#writer.abandon(new TftpDiskTimeoutError(this.#diskGiveUpMs));
      this.#onEnd(end);
    }, this.#diskGiveUpMs);
    void work
      .catch(() => {})
      .then(() => {
        if (timer === undefined) return;
        this.#clock.clearTimeout(timer);
        timer = undefined;
        this.#onEnd(end);
      });
  }

  /** Ends the transfer; the socket closes after `lastPacket`, at once without, or is left to the caller (`keepSocket`). */
  #close(lastPacket?: Uint8Array, keepSocket = false): void {
    this.#state = 'done';
    this.#engine.stop();
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#disk.stop();
    this.#socket.off('message', this.#onMessage);
    const socket = this.#socket;
    socket.on('error', () => {});
    if (keepSocket) return;
    if (lastPacket) socket.send(lastPacket, () => socket.close());
    else socket.close();
  }
}
