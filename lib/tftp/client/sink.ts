/**
 * Where a download's bytes go. The receiver hands over each block
 * synchronously; a sink copies it into a large chunk and writes whole chunks,
 * so the hot path makes no file system call per block.
 */
import { createHash, type Hash } from 'node:crypto';
import { close, ftruncate, open, write, writeSync } from 'node:fs';
import type { Writable } from 'node:stream';
import type { Clock, TimerHandle } from '../../clock.js';
import { TftpLocalIoError } from './errors.js';

export interface DownloadSink {
  /** Appends bytes [start, end) of `buf` (copied: the caller may drop `buf`). */
  write(buf: Uint8Array, start: number, end: number): void;
  /** True while the sink holds more than it wants unwritten: the receiver holds back its ACK. */
  readonly full: boolean;
  /** True when a window's blocks may reach it after that window's ACK: `full` may then turn a window late. */
  readonly takesLate?: boolean;
  /** Called when `full` turns false. */
  onDrain: (() => void) | undefined;
  /** A write failed; the transfer must stop. */
  readonly failed: Error | undefined;
  /** Bytes accepted so far. */
  readonly bytes: number;
  /** True when the sink can start over from byte 0 (a restart after a refused cookie). */
  readonly canRewind: boolean;
  rewind(): Promise<void>;
  /** Writes what is left; resolves with the SHA-256 of everything written when the sink computes it. */
  finish(): Promise<{ bytes: number; sha256?: string }>;
  /** Gives up: stops writing, releases the file or stream. */
  abort(): Promise<void>;
}

/** Small enough that writing one hides in the gaps between windows; large enough for few calls. */
const SINK_CHUNK_SIZE = 1 << 16;
/** A block at least this large, coming when no chunk is being filled, is written as it is. */
const DIRECT_MIN = SINK_CHUNK_SIZE / 2;
/** Chunks written at once (through the thread pool) before the sink reports itself full: 4 MiB. */
const MAX_IN_FLIGHT = 64;
/** A synchronous write taking longer than this sends the next chunks through the thread pool. */
const SLOW_WRITE_MS = 5;
/** Chunks written through the thread pool after a slow write before a synchronous one is tried again: a loaded host's one pause is not a slow disk. */
const ASYNC_CHUNKS = 64;

/** Copies blocks into chunks and hands full chunks to `flush`. */
abstract class ChunkedSink implements DownloadSink {
  onDrain: (() => void) | undefined;
  #failed: Error | undefined;
  /** Taken on first write: subclasses' fields are not set up in this constructor. */
  #chunk: Buffer | undefined;
  #fill = 0;
  #bytes = 0;
  #hash: Hash | undefined;
  #flushedBytes = 0;
  readonly #wantHash: boolean;

  constructor(sha256: boolean) {
    this.#wantHash = sha256;
    this.#hash = sha256 ? createHash('sha256') : undefined;
  }

  abstract readonly full: boolean;
  abstract readonly canRewind: boolean;
  readonly takesLate = true;
  /** Writes `chunk[0, length)` at byte `position`; the chunk is the sink's until `done` is called. */
  protected abstract flush(chunk: Buffer, length: number, position: number): void;
  protected abstract takeBuffer(): Buffer;
  /** Writes `buf[start, end)` at byte `position` before returning, or returns false (the bytes then go through a chunk). */
  protected writeNow(_buf: Uint8Array, _start: number, _end: number, _position: number): boolean {
    return false;
  }
  protected abstract drained(): Promise<void>;
  protected abstract close(): Promise<void>;
  protected abstract truncate(length: number): Promise<void>;

  get failed(): Error | undefined {
    return this.#failed;
  }

  get bytes(): number {
    return this.#bytes;
  }

  protected fail(err: Error): void {
    this.#failed ??= err;
  }

  write(buf: Uint8Array, start: number, end: number): void {
    // A large block between chunks goes straight to the file: no copy into a chunk.
    if (this.#fill === 0 && end - start >= DIRECT_MIN && this.writeNow(buf, start, end, this.#flushedBytes)) {
      this.#hash?.update(buf.subarray(start, end));
      this.#flushedBytes += end - start;
      this.#bytes += end - start;
      return;
    }
    let from = start;
    while (from < end) {
      const chunk = (this.#chunk ??= this.takeBuffer());
      const n = Math.min(chunk.length - this.#fill, end - from);
      if (Buffer.isBuffer(buf)) buf.copy(chunk, this.#fill, from, from + n);
      else chunk.set(buf.subarray(from, from + n), this.#fill);
      this.#fill += n;
      from += n;
      if (this.#fill === chunk.length) this.#flushChunk();
    }
    this.#bytes += end - start;
  }

  #flushChunk(): void {
    const chunk = this.#chunk;
    if (!chunk || this.#fill === 0) return;
    this.#hash?.update(chunk.subarray(0, this.#fill));
    this.flush(chunk, this.#fill, this.#flushedBytes);
    this.#flushedBytes += this.#fill;
    this.#chunk = undefined;
    this.#fill = 0;
  }

  async rewind(): Promise<void> {
    if (!this.canRewind) throw new TftpLocalIoError('this destination cannot start over');
    await this.drained();
    this.#fill = 0;
    this.#bytes = 0;
    this.#flushedBytes = 0;
    this.#hash = this.#wantHash ? createHash('sha256') : undefined;
  }

  async finish(): Promise<{ bytes: number; sha256?: string }> {
    this.#flushChunk();
    await this.drained();
    if (this.#failed) throw this.#failed;
    await this.truncate(this.#bytes);
    await this.close();
    if (this.#failed) throw this.#failed;
    const sha256 = this.#hash?.digest('hex');
    return sha256 === undefined ? { bytes: this.#bytes } : { bytes: this.#bytes, sha256 };
  }

  async abort(): Promise<void> {
    await this.drained().catch(() => {});
    await this.close().catch(() => {});
  }
}

/**
 * A local file, written with positional writes of whole chunks. While the
 * file system takes them at memory speed they are written synchronously: a
 * 64 KiB write into the page cache costs less than handing it to the thread
 * pool, whose thread then takes the receiving thread's core for its turn.
 * Once a write is slow (a slow or busy disk, or this process paused), the
 * next ASYNC_CHUNKS go through the thread pool, several in flight, and the
 * receiver holds its ACK while too many are; then a synchronous write is
 * tried again.
 */
export class FileSink extends ChunkedSink {
  readonly canRewind = true;
  readonly #fd: number;
  readonly #path: string;
  readonly #free: Buffer[] = [];
  #sync = true;
  /** Chunks still to go through the thread pool before trying a synchronous write again. */
  #asyncLeft = 0;
  #inFlight = 0;
  #closed = false;
  #idle: (() => void)[] = [];

  readonly #now: () => number;

  private constructor(fd: number, path: string, sha256: boolean, now: () => number) {
    super(sha256);
    this.#fd = fd;
    this.#path = path;
    this.#now = now;
  }

  /** `now`: the clock that times the writes (a test's, to make one slow). */
  static open(path: string, opts: { sha256?: boolean; now?: () => number } = {}): Promise<FileSink> {
    return new Promise((resolve, reject) => {
      open(path, 'w', (err, fd) => {
        if (err) reject(new TftpLocalIoError(`cannot write ${path}: ${err.message}`, { cause: err }));
        else resolve(new FileSink(fd, path, opts.sha256 ?? false, opts.now ?? (() => performance.now())));
      });
    });
  }

  get full(): boolean {
    return this.#inFlight >= MAX_IN_FLIGHT;
  }

  /** Chunks being written through the thread pool. */
  get inFlight(): number {
    return this.#inFlight;
  }

  protected takeBuffer(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafe(SINK_CHUNK_SIZE);
  }

  protected override writeNow(buf: Uint8Array, start: number, end: number, position: number): boolean {
    if (!this.#sync) return false;
    this.#writeSync(buf, start, end, position);
    return true;
  }

  protected flush(chunk: Buffer, length: number, position: number): void {
    if (this.#sync) {
      this.#writeSync(chunk, 0, length, position);
      this.#free.push(chunk);
      return;
    }
    this.#asyncLeft--;
    this.#inFlight++;
    const step = (off: number): void => {
      write(this.#fd, chunk, off, length - off, position + off, (err, written) => {
        if (!err && off + written < length) return step(off + written);
        if (err) this.fail(new TftpLocalIoError(`cannot write ${this.#path}: ${err.message}`, { cause: err }));
        this.#inFlight--;
        this.#free.push(chunk);
        if (this.#inFlight === MAX_IN_FLIGHT - 1) this.onDrain?.();
        if (this.#inFlight === 0) {
          if (this.#asyncLeft <= 0) this.#sync = true;
          for (const w of this.#idle.splice(0)) w();
        }
      });
    };
    step(0);
  }

  /** Writes `buf[start, end)` at `position` now; a slow write sends the next chunks through the thread pool. */
  #writeSync(buf: Uint8Array, start: number, end: number, position: number): void {
    const started = this.#now();
    try {
      for (let off = start; off < end;) {
        const n = writeSync(this.#fd, buf, off, end - off, position + off - start);
        if (n <= 0) throw new Error('the file system took no bytes');
        off += n;
      }
    } catch (err) {
      this.fail(new TftpLocalIoError(`cannot write ${this.#path}: ${(err as Error).message}`, { cause: err }));
    }
    if (this.#now() - started > SLOW_WRITE_MS) {
      this.#sync = false;
      this.#asyncLeft = ASYNC_CHUNKS;
    }
  }

  protected drained(): Promise<void> {
    return this.#inFlight === 0 ? Promise.resolve() : new Promise((r) => this.#idle.push(r));
  }

  protected truncate(length: number): Promise<void> {
    return new Promise((resolve) => {
      ftruncate(this.#fd, length, (err) => {
        if (err) this.fail(new TftpLocalIoError(`cannot truncate ${this.#path}: ${err.message}`, { cause: err }));
        resolve();
      });
    });
  }

  protected close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return new Promise((resolve) => {
      close(this.#fd, (err) => {
        if (err) this.fail(new TftpLocalIoError(`cannot close ${this.#path}: ${err.message}`, { cause: err }));
        resolve();
      });
    });
  }
}

/** A Writable (stdout, a socket ...): chunks go out in order; it cannot start over. */
export class StreamSink extends ChunkedSink {
  readonly canRewind = false;
  readonly #stream: Writable;
  readonly #end: boolean;
  #pending = 0;
  #idle: (() => void)[] = [];
  #needDrain = false;

  constructor(stream: Writable, opts: { sha256?: boolean; end?: boolean } = {}) {
    super(opts.sha256 ?? false);
    this.#stream = stream;
    this.#end = opts.end ?? true;
    stream.on('error', (err) => this.fail(new TftpLocalIoError(`cannot write the output stream: ${err.message}`, { cause: err })));
    stream.on('drain', () => {
      if (!this.#needDrain) return;
      this.#needDrain = false;
      this.onDrain?.();
    });
  }

  get full(): boolean {
    return this.#needDrain;
  }

  protected takeBuffer(): Buffer {
    // The stream keeps the chunk it was given, so each chunk is new.
    return Buffer.allocUnsafe(SINK_CHUNK_SIZE);
  }

  protected flush(chunk: Buffer, length: number): void {
    this.#pending++;
    const ok = this.#stream.write(chunk.subarray(0, length), (err) => {
      if (err) this.fail(new TftpLocalIoError(`cannot write the output stream: ${err.message}`, { cause: err }));
      if (--this.#pending === 0) for (const w of this.#idle.splice(0)) w();
    });
    if (!ok) this.#needDrain = true;
  }

  protected drained(): Promise<void> {
    return this.#pending === 0 || this.failed ? Promise.resolve() : new Promise((r) => this.#idle.push(r));
  }

  protected truncate(): Promise<void> {
    return Promise.resolve();
  }

  protected close(): Promise<void> {
    if (!this.#end) return Promise.resolve();
    return new Promise((resolve) => this.#stream.end(() => resolve()));
  }
}

/**
 * Paces a download to `bytesPerSecond` (a token bucket of `burstBytes`): while
 * more has come than the rate allows, the sink is full, so the receiver
 * holds its ACK and the PE sends nothing more until the rate catches up.
 */
export class RateLimitedSink implements DownloadSink {
  onDrain: (() => void) | undefined;
  readonly #inner: DownloadSink;
  readonly #clock: Clock;
  /** Bytes per millisecond. */
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #at: number;
  #timer: TimerHandle | undefined;

  constructor(inner: DownloadSink, bytesPerSecond: number, clock: Clock, burstBytes = Math.max(SINK_CHUNK_SIZE, bytesPerSecond / 50)) {
    if (!(bytesPerSecond > 0)) throw new RangeError('the rate must be above 0');
    this.#inner = inner;
    this.#clock = clock;
    this.#rate = bytesPerSecond / 1000;
    this.#burst = burstBytes;
    this.#tokens = burstBytes;
    this.#at = clock.now();
    inner.onDrain = () => {
      if (!this.full) this.onDrain?.();
    };
  }

  get full(): boolean {
    return this.#inner.full || this.#owing();
  }

  get failed(): Error | undefined {
    return this.#inner.failed;
  }

  get bytes(): number {
    return this.#inner.bytes;
  }

  get canRewind(): boolean {
    return this.#inner.canRewind;
  }

  write(buf: Uint8Array, start: number, end: number): void {
    this.#inner.write(buf, start, end);
    if (this.#owing(end - start) && this.#timer === undefined) this.#arm();
  }

  rewind(): Promise<void> {
    return this.#inner.rewind();
  }

  finish(): Promise<{ bytes: number; sha256?: string }> {
    this.#disarm();
    return this.#inner.finish();
  }

  abort(): Promise<void> {
    this.#disarm();
    return this.#inner.abort();
  }

  /** Takes `spent` bytes from the bucket (refilled up to now); true while it is in debt. */
  #owing(spent = 0): boolean {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#rate) - spent;
    this.#at = now;
    return this.#tokens < 0;
  }

  #arm(): void {
    this.#timer = this.#clock.setTimeout(this.#onTimer, Math.max(1, Math.ceil(-this.#tokens / this.#rate)));
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    if (this.#owing()) return this.#arm();
    if (!this.#inner.full) this.onDrain?.();
  };
}
