/**
 * A file on disk as the blocks of an upload, read in chunks ahead of the
 * window: memory stays within a few chunks whatever the file's size. Any
 * block may be asked for again (a rewind, or a failover resuming at a
 * cookie's block): a block whose chunk was let go is read again.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { TftpLocalIoError } from './errors.js';
import type { UploadSource, UploadSourceWatcher } from './sender.js';

/** Bytes read at a time. */
export const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;

const EMPTY: Uint8Array[] = [];

export class FileSource implements UploadSource {
  /** The size when the upload started: the file must keep it. */
  readonly total: number;
  readonly #fh: FileHandle;
  readonly #path: string;
  readonly #chunkBytes: number;
  /** Chunks in memory (the one being sent, the one before for rewinds, the one ahead), by index. */
  readonly #chunks = new Map<number, Uint8Array>();
  readonly #loading = new Set<number>();
  /** The chunks wanted now. */
  #lo = 0;
  #hi = 0;
  /** The chunk of the block asked for last. */
  #at = -1;
  #watcher: UploadSourceWatcher | undefined;
  #error: TftpLocalIoError | undefined;
  #closed = false;
  /** Chunk reads done, and the most bytes held or being read at once: for tests. */
  reads = 0;
  peakBytes = 0;

  private constructor(fh: FileHandle, path: string, size: number, chunkBytes: number) {
    this.#fh = fh;
    this.#path = path;
    this.total = size;
    this.#chunkBytes = chunkBytes;
  }

  static async open(path: string, chunkBytes = DEFAULT_CHUNK_BYTES): Promise<FileSource> {
    let fh: FileHandle | undefined;
    try {
      fh = await open(path, 'r');
      const st = await fh.stat();
      if (!st.isFile()) throw new Error('not a regular file');
      return new FileSource(fh, path, st.size, Math.max(1, chunkBytes));
    } catch (err) {
      await fh?.close().catch(() => {});
      throw new TftpLocalIoError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Who hears that awaited bytes are here, or that the file cannot be read (one at a time: the attempt under way). */
  watch(w: UploadSourceWatcher | undefined): void {
    this.#watcher = w;
    if (w && this.#error) w.fail(this.#error);
  }

  block(n: number, blksize: number): Uint8Array[] | undefined {
    if (this.#error) return undefined;
    const start = (n - 1) * blksize;
    if (start > this.total) return undefined;
    if (start === this.total) return EMPTY;
    const end = Math.min(start + blksize, this.total);
    const first = Math.floor(start / this.#chunkBytes);
    const last = Math.floor((end - 1) / this.#chunkBytes);
    const a = this.#chunks.get(first);
    const b = last === first ? a : this.#chunks.get(last);
    // Once per chunk the window enters, or while its bytes are missing: not on every block.
    if (last !== this.#at || !a || !b) {
      this.#at = last;
      this.#keep(first, last);
    }
    if (!a || !b) return undefined;
    const off = first * this.#chunkBytes;
    if (a === b) return [a.subarray(start - off, end - off)];
    // A block across two chunks (the chunk size need not be a multiple of blksize).
    return [a.subarray(start - off), b.subarray(0, end - last * this.#chunkBytes)];
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#chunks.clear();
    await this.#fh.close().catch(() => {});
  }

  /** Holds chunks last-1 .. last+1 (the one before for rewinds, the one after read ahead), reading those missing, and lets the rest go. */
  #keep(first: number, last: number): void {
    this.#lo = last - 1;
    this.#hi = Math.min(last + 1, Math.max(0, Math.ceil(this.total / this.#chunkBytes) - 1));
    for (const i of this.#chunks.keys()) if (i < this.#lo || i > this.#hi) this.#chunks.delete(i);
    for (let i = first; i <= this.#hi; i++) if (!this.#chunks.has(i) && !this.#loading.has(i)) void this.#load(i);
  }

  async #load(i: number): Promise<void> {
    this.#loading.add(i);
    const pos = i * this.#chunkBytes;
    const len = Math.min(this.#chunkBytes, this.total - pos);
    const buf = new Uint8Array(len);
    this.#noteHeld(len);
    try {
      let got = 0;
      while (got < len) {
        const { bytesRead } = await this.#fh.read(buf, got, len - got, pos + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      const size = (await this.#fh.stat()).size;
      if (got < len || size !== this.total) throw new Error(`its size changed during the upload (${this.total} bytes at the start, ${size} now)`);
    } catch (err) {
      this.#loading.delete(i);
      if (this.#closed || this.#error) return;
      this.#error = new TftpLocalIoError(`cannot read ${this.#path}: ${(err as Error).message}`, { cause: err });
      this.#watcher?.fail(this.#error);
      return;
    }
    this.#loading.delete(i);
    if (this.#closed) return;
    // A rewind or a resume may have moved elsewhere while it was read.
    if (i >= this.#lo && i <= this.#hi) this.#chunks.set(i, buf);
    this.#watcher?.more();
  }

  #noteHeld(adding: number): void {
    this.reads++;
    let held = adding;
    for (const c of this.#chunks.values()) held += c.length;
    // Reads under way besides this one count at a full chunk.
    held += this.#loading.size > 1 ? (this.#loading.size - 1) * this.#chunkBytes : 0;
    if (held > this.peakBytes) this.peakBytes = held;
  }
}
