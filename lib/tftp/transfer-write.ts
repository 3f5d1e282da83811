/**
 * One upload (WRQ, only on a writable server): takes DATA lock-step or in
 * RFC 7440 windows, buffers it into large writes to a temporary file, and
 * renames that onto the target only when the last block is in, so a failed
 * upload leaves nothing behind. Until the first DATA the client's address is
 * unproven: its ACK 0 (or OACK) goes again only when the WRQ does, and the
 * transfer is dropped after the handshake deadline.
 */
import type { Socket } from 'node:dgram';
import { link, rename, unlink } from 'node:fs/promises';
import type { Clock, TimerHandle } from '../clock.js';
import { decodeTftpPacket } from '../../protocols/tftp/codec.js';
import { TftpErrorCode, TftpOpcode } from '../../protocols/tftp/types.js';
import { TftpDiskFullError, TftpFileExistsError, TftpIllegalOperationError, TftpRequestError } from './errors.js';
import { ackPacket, blocksAhead, errorPacket, NetasciiDecoder, wireBlock } from '../../protocols/tftp/packets.js';
import type { WriteTarget } from './files.js';
import type { Transfer, TransferEnd } from './transfer-common.js';

interface WriteTransferInit {
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
  /** The client answered once. */
  onUnderWay?: () => void;
  clock: Clock;
  onEnd: (end: TransferEnd) => void;
}

const WRITE_CHUNK = 1 << 20;
/** ACKs wait while this much is queued for the disk: the client slows to the disk's pace. */
const MAX_QUEUED = 16 << 20;

/** Collects blocks into large buffers and writes them in order. */
class UploadWriter {
  readonly #target: WriteTarget;
  #buf = Buffer.allocUnsafe(WRITE_CHUNK);
  #used = 0;
  #position = 0;
  #chain: Promise<void> = Promise.resolve();
  queued = 0;
  failure: Error | undefined;
  onDrain: (() => void) | undefined;

  constructor(target: WriteTarget) {
    this.#target = target;
  }

  push(data: Uint8Array): void {
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
    const at = this.#position;
    this.#position += chunk.length;
    this.queued += chunk.length;
    this.#buf = Buffer.allocUnsafe(WRITE_CHUNK);
    this.#used = 0;
    this.#chain = this.#chain.then(async () => {
      if (this.failure) return;
      try {
        let done = 0;
        while (done < chunk.length) done += (await this.#target.handle.write(chunk, done, chunk.length - done, at + done)).bytesWritten;
      } catch (err) {
        this.failure = err as Error;
      }
      this.queued -= chunk.length;
      this.onDrain?.();
    });
  }

  /** Writes the rest, syncs and closes; the caller renames. */
  async finish(): Promise<void> {
    this.#flush();
    await this.#chain;
    if (this.failure) throw this.failure;
    await this.#target.handle.datasync();
    await this.#target.handle.close();
  }

  async discard(): Promise<void> {
    await this.#chain;
    await this.#target.handle.close().catch(() => {});
    await unlink(this.#target.temp).catch(() => {});
  }
}

export class WriteTransfer implements Transfer {
  readonly wantsCookies = false;
  readonly leaving = false;

  /** An upload cannot resume at another PE: it gets the drain time, then an ERROR. */
  leave(): boolean {
    return false;
  }
  readonly #init: WriteTransferInit;
  readonly #socket: Socket;
  readonly #clock: Clock;
  readonly #writer: UploadWriter;
  readonly #netascii: NetasciiDecoder | undefined;
  /** Absolute number of the next block wanted. */
  #expected = 1;
  /** Absolute number of the last block acknowledged (0: the request). */
  #lastAcked = 0;
  #inWindow = 0;
  #bytes = 0;
  #oackPending: boolean;
  #ackHeld: number | undefined;
  #lastProgressAt: number;
  #retries = 0;
  #timer: TimerHandle | undefined;
  /** 'receiving' -> 'storing' (last block in, writing) -> 'dallying' (re-ACKing a lost final ACK) -> 'done'. */
  #state: 'receiving' | 'storing' | 'dallying' | 'done' = 'receiving';

  constructor(init: WriteTransferInit) {
    this.#init = init;
    this.#socket = init.socket;
    this.#clock = init.clock;
    this.#writer = new UploadWriter(init.target);
    this.#netascii = init.netascii ? new NetasciiDecoder() : undefined;
    this.#oackPending = init.oack !== undefined;
    this.#lastProgressAt = init.clock.now();
    this.#socket.on('message', this.#onMessage);
    this.#socket.on('error', this.#onSocketError);
    this.#writer.onDrain = () => {
      if (this.#ackHeld !== undefined && this.#writer.queued <= MAX_QUEUED / 2 && this.#state === 'receiving') {
        const n = this.#ackHeld;
        this.#ackHeld = undefined;
        this.#ack(n);
      }
    };
  }

  start(): void {
    this.#socket.send(this.#init.oack ?? ackPacket(0));
    this.#arm(this.#init.handshakeMs);
  }

  repeat(): void {
    if (this.#state === 'receiving' && this.#expected === 1) this.#socket.send(this.#init.oack ?? ackPacket(0));
  }

  abort(notify: boolean, message: string): void {
    if (this.#state === 'done') return;
    if (this.#state === 'dallying') {
      this.#close();
      return;
    }
    this.#fail({ reason: 'closed', bytes: this.#bytes, lastBlock: this.#expected - 1 }, notify ? errorPacket(TftpErrorCode.NotDefined, message) : undefined);
  }

  readonly #onMessage = (msg: Buffer): void => {
    if (this.#state === 'done') return;
    if (msg.length >= 4 && msg[0] === 0 && msg[1] === TftpOpcode.Data) this.#data((msg[2]! << 8) | msg[3]!, msg);
    else this.#other(msg);
  };

  readonly #onSocketError = (err: Error): void => {
    if (this.#state === 'done') return;
    if (this.#state === 'dallying') {
      this.#close();
      return;
    }
    const gone = (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
    this.#fail({ reason: gone ? 'peer-gone' : 'error', bytes: this.#bytes, lastBlock: this.#expected - 1, ...(gone ? {} : { error: err }) });
  };

  #data(wire: number, msg: Buffer): void {
    const blksize = this.#init.blksize;
    const diff = blocksAhead(wire, this.#expected);
    if (diff !== 0) {
      if (diff >= 0x8000) {
        // Already have it: the client missed our ACK. Answer the retransmitted window once, at its end.
        if (this.#init.windowsize === 1 || wire === wireBlock(this.#lastAcked)) this.#socket.send(ackPacket(this.#lastAcked));
      } else if (this.#state === 'receiving' && this.#init.windowsize > 1 && this.#lastAcked !== this.#expected - 1 && this.#ackHeld === undefined) {
        // A gap: ACK the last block in order, once, and the sender goes back there (RFC 7440).
        this.#ack(this.#expected - 1);
      }
      return;
    }
    if (this.#state !== 'receiving') return;
    const len = msg.length - 4;
    if (len > blksize) {
      const e = new TftpIllegalOperationError(`illegal TFTP operation: DATA block of ${len} bytes exceeds the blksize ${blksize}`);
      this.#fail({ reason: 'error', bytes: this.#bytes, lastBlock: this.#expected - 1, error: e }, errorPacket(e.tftpCode, e.message));
      return;
    }
    if (this.#expected === 1) {
      this.#oackPending = false;
      this.#init.onUnderWay?.();
    }
    const data = msg.subarray(4);
    this.#bytes += len;
    if (this.#bytes > this.#init.maxBytes) {
      const e = new TftpDiskFullError(`upload exceeds the ${this.#init.maxBytes} bytes this server takes`);
      this.#fail({ reason: 'error', bytes: this.#bytes, lastBlock: this.#expected - 1, error: e }, errorPacket(e.tftpCode, e.message));
      return;
    }
    this.#writer.push(this.#netascii ? this.#netascii.push(data) : data);
    const n = this.#expected++;
    this.#lastProgressAt = this.#clock.now();
    this.#retries = 0;
    if (this.#writer.failure) {
      this.#writeFailed(this.#writer.failure);
      return;
    }
    if (len < blksize) {
      void this.#store(n);
      return;
    }
    if (++this.#inWindow >= this.#init.windowsize) {
      if (this.#writer.queued > MAX_QUEUED) {
        this.#ackHeld = n;
        this.#inWindow = 0;
      } else this.#ack(n);
    }
  }

  #ack(n: number): void {
    this.#lastAcked = n;
    this.#inWindow = 0;
    this.#socket.send(ackPacket(n));
  }

  async #store(last: number): Promise<void> {
    this.#state = 'storing';
    try {
      if (this.#netascii) this.#writer.push(this.#netascii.end());
      await this.#writer.finish();
      const { temp, target, path } = this.#init.target;
      if (this.#init.overwrite) await rename(temp, target);
      else {
        // link() fails if the name exists: of two uploads of one name, exactly one wins.
        try {
          await link(temp, target);
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
    this.#ack(last);
    this.#init.onEnd({ reason: 'done', bytes: this.#bytes, lastBlock: last });
    // Stay a while to re-ACK the final DATA if this ACK is lost.
    this.#lastProgressAt = this.#clock.now();
  }

  #writeFailed(err: Error): void {
    const code = (err as NodeJS.ErrnoException).code;
    const e =
      err instanceof TftpRequestError
        ? err
        : code === 'ENOSPC' || code === 'EDQUOT'
          ? new TftpDiskFullError('disk full', { cause: err })
          : new TftpRequestError('RSP_ERR_TFTP_WRITE', TftpErrorCode.NotDefined, `write error: ${code ?? err.message}`, { cause: err });
    this.#fail({ reason: 'error', bytes: this.#bytes, lastBlock: this.#expected - 1, error: e }, errorPacket(e.tftpCode, e.message));
  }

  #other(msg: Buffer): void {
    if (msg.length > 0 && msg[0] !== 0) return;
    if (this.#state === 'dallying') return;
    if (msg.length >= 2 && msg[1] === TftpOpcode.Error) {
      let text = 'malformed ERROR packet';
      let code: number = TftpErrorCode.NotDefined;
      try {
        const p = decodeTftpPacket(msg);
        if (p.opcode === TftpOpcode.Error) {
          text = p.message;
          code = p.code;
        }
      } catch {
        // The peer ends the transfer either way.
      }
      this.#fail({ reason: 'peer-error', bytes: this.#bytes, lastBlock: this.#expected - 1, error: new TftpRequestError('RSP_ERR_TFTP_PEER', code, text) });
      return;
    }
    const what = msg.length >= 4 ? `opcode ${(msg[0]! << 8) | msg[1]!} during an upload` : 'truncated packet';
    const e = new TftpIllegalOperationError(`illegal TFTP operation: ${what}`);
    this.#fail({ reason: 'error', bytes: this.#bytes, lastBlock: this.#expected - 1, error: e }, errorPacket(e.tftpCode, e.message));
  }

  #arm(ms: number): void {
    this.#timer = this.#clock.setTimeout(this.#onTimer, ms);
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    if (this.#state === 'done') return;
    const now = this.#clock.now();
    const idle = now - this.#lastProgressAt;
    const timeoutMs = this.#init.timeoutMs;
    if (this.#state === 'dallying') {
      if (idle >= 2 * timeoutMs) this.#close();
      else this.#arm(2 * timeoutMs - idle);
      return;
    }
    if (this.#state === 'receiving' && this.#expected === 1) {
      // No DATA by the handshake deadline: nothing is resent to an unproven address.
      this.#fail({ reason: 'timeout', bytes: 0, lastBlock: 0 });
      return;
    }
    if (idle < timeoutMs) {
      this.#arm(timeoutMs - idle);
      return;
    }
    this.#lastProgressAt = now;
    if (this.#state === 'receiving' && this.#ackHeld === undefined) {
      if (++this.#retries > this.#init.maxRetries) {
        this.#fail({ reason: 'timeout', bytes: this.#bytes, lastBlock: this.#expected - 1 });
        return;
      }
      this.#socket.send(this.#oackPending && this.#init.oack ? this.#init.oack : ackPacket(this.#lastAcked));
    }
    this.#arm(timeoutMs);
  };

  #fail(end: TransferEnd, lastPacket?: Uint8Array): void {
    if (this.#state === 'done' || this.#state === 'dallying') return;
    this.#close(lastPacket);
    // The end is reported once the temporary file is gone.
    void this.#writer.discard().finally(() => this.#init.onEnd(end));
  }

  #close(lastPacket?: Uint8Array): void {
    this.#state = 'done';
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#socket.off('message', this.#onMessage);
    const socket = this.#socket;
    socket.on('error', () => {});
    if (lastPacket) socket.send(lastPacket, () => socket.close());
    else socket.close();
  }
}
