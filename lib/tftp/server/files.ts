/**
 * The file side of the TFTP server: which paths may be served (nothing
 * outside the root, whatever the request or a symlink says), and file
 * contents held in memory in large chunks, read ahead of the transfer, so a
 * DATA packet is a subarray handed to the socket without an fs call.
 */
import { constants as fsConstants } from 'node:fs';
import { lstat, open, opendir, readlink, realpath, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import { dataPacket as encodeDataPacket, writeDataHeader } from '../../../protocols/tftp/packets.js';
import { CookieError, TftpAccessError, TftpFileExistsError, TftpFileNotFoundError, TftpRequestError, TftpServerBusyError } from './errors.js';

/**
 * The request's path as a root-relative path with '/' separators: a leading
 * '/' (or '\') means the root, as tftpd-hpa -s does; '..' segments are refused
 * outright rather than normalised, so nothing a client writes reaches outside.
 */
export function normaliseRequestPath(requested: string): string {
  const segments = requested.split(/[/\\]+/);
  const kept: string[] = [];
  for (const s of segments) {
    if (s === '' || s === '.') continue;
    if (s === '..') throw new TftpAccessError(`'${requested}': '..' is not allowed in a path`);
    kept.push(s);
  }
  if (kept.length === 0) throw new TftpAccessError(`'${requested}' names no file`);
  return kept.join('/');
}

function within(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

function fsError(path: string, err: unknown): TftpRequestError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return new TftpFileNotFoundError(`'${path}' not found`, { cause: err });
  if (code === 'EACCES' || code === 'EPERM' || code === 'ELOOP') return new TftpAccessError(`'${path}': permission denied`, { cause: err });
  if (code === 'EMFILE' || code === 'ENFILE') return new TftpServerBusyError(`'${path}': the server has too many files open`, { cause: err });
  return new TftpAccessError(`'${path}': ${code ?? (err as Error).message}`, { cause: err });
}

/** Linux tells which file an fd really is; elsewhere the realpath check before open stands alone. */
async function fdPath(fd: number): Promise<string | undefined> {
  try {
    return await readlink(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

export interface OpenedFile {
  handle: FileHandle;
  /** Root-relative request path. */
  path: string;
  size: number;
  /** Whole milliseconds: what a cookie carries, comparable across PEs with copies of the file. */
  mtimeMs: number;
  /** Identifies this version of this file in the chunk cache. */
  key: string;
}

/** Opens a regular file under `root` (a realpath) for reading; throws TftpRequestError subclasses. */
export async function openForRead(root: string, requested: string): Promise<OpenedFile> {
  const path = normaliseRequestPath(requested);
  let real: string;
  try {
    real = await realpath(join(root, path));
  } catch (err) {
    throw fsError(path, err);
  }
  if (!within(root, real)) throw new TftpAccessError(`'${path}' leads outside the served directory`);
  let handle: FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO would otherwise wait for a writer, holding a thread of the file pool.
    handle = await open(real, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (err) {
    throw fsError(path, err);
  }
  try {
    // A directory on the way swapped for a symlink between realpath and open would show here.
    const [actual, st] = await Promise.all([fdPath(handle.fd), handle.stat({ bigint: false })]);
    if (actual !== undefined && !within(root, actual)) throw new TftpAccessError(`'${path}' leads outside the served directory`);
    if (!st.isFile()) throw new TftpAccessError(`'${path}' is not a regular file`);
    const mtimeMs = Math.floor(st.mtimeMs);
    return { handle, path, size: st.size, mtimeMs, key: `${st.dev}:${st.ino}:${st.size}:${mtimeMs}` };
  } catch (err) {
    await handle.close().catch(() => {});
    throw err instanceof TftpRequestError ? err : fsError(path, err);
  }
}

const PART_SUFFIX = '.part';
/** openForWrite's tag: PID-RANDOM (the PID of the PE writing the file). */
export const UPLOAD_TAG = /^[0-9]{1,10}-[0-9a-f]{12}$/;
/** `.NAME.PID-RANDOM.part`: an upload's temporary file. */
const PART_NAME = /^\..+\.([0-9]{1,10})-[0-9a-f]{12}\.part$/;

function running(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temporary upload files left under `root` by a process that is no
 * longer running (one that crashed mid-upload); those of a live process (an
 * other PE serving the same root) stay, and so do those written since
 * `keepSince` (wall-clock ms): a client may still resume them at a PE of the
 * pool with a cookie. Looks at `maxEntries` entries at most; symlinks are not
 * followed. Returns the paths removed.
 */
export async function removeStaleUploads(root: string, keepSince = Number.POSITIVE_INFINITY, maxEntries = 100_000): Promise<string[]> {
  const removed: string[] = [];
  const dirs = [root];
  let seen = 0;
  while (dirs.length > 0 && seen < maxEntries) {
    const dir = dirs.pop()!;
    let entries;
    try {
      entries = await opendir(dir);
    } catch {
      continue;
    }
    for await (const e of entries) {
      if (++seen > maxEntries) break;
      const path = join(dir, e.name);
      if (e.isDirectory()) dirs.push(path);
      else if (e.isFile()) {
        const m = PART_NAME.exec(e.name);
        if (!m || running(Number(m[1]))) continue;
        const recent = await lstat(path).then(
          (st) => st.mtimeMs >= keepSince,
          () => true,
        );
        if (recent) continue;
        await unlink(path).then(
          () => removed.push(path),
          () => {},
        );
      }
    }
  }
  return removed;
}

export interface WriteTarget {
  path: string;
  /** Absolute final path (parent realpath + name). */
  target: string;
  /** Temporary file in the same directory, renamed onto `target` when complete. */
  temp: string;
  /** The temporary file's tag (UPLOAD_TAG): what an upload's cookie names. */
  tag: string;
  handle: FileHandle;
}

/** Where an upload of `requested` goes: its parent under the root, and the target free (or overwritable). */
async function writePlace(root: string, requested: string, overwrite: boolean): Promise<{ path: string; name: string; parent: string; target: string }> {
  const path = normaliseRequestPath(requested);
  const name = basename(path);
  let parent: string;
  try {
    parent = await realpath(join(root, dirname(path)));
  } catch (err) {
    throw fsError(dirname(path), err);
  }
  if (!within(root, parent)) throw new TftpAccessError(`'${path}' leads outside the served directory`);
  const target = join(parent, name);
  try {
    const st = await lstat(target);
    if (st.isDirectory()) throw new TftpAccessError(`'${path}' is a directory`);
    if (!st.isFile()) throw new TftpAccessError(`'${path}' is not a regular file`);
    if (!overwrite) throw new TftpFileExistsError(`'${path}' already exists`);
  } catch (err) {
    if (err instanceof TftpRequestError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(path, err);
  }
  return { path, name, parent, target };
}

function tempName(parent: string, name: string, tag: string): string {
  return join(parent, `.${name}.${tag}${PART_SUFFIX}`);
}

/** Creates the temporary file an upload goes to; the directory must exist under the root. */
export async function openForWrite(root: string, requested: string, overwrite: boolean, tag: string): Promise<WriteTarget> {
  const { path, name, parent, target } = await writePlace(root, requested, overwrite);
  const temp = tempName(parent, name, tag);
  try {
    const handle = await open(temp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o644);
    return { path, target, temp, tag, handle };
  } catch (err) {
    throw fsError(path, err);
  }
}

/**
 * Takes over the temporary file of an upload another PE (or this one)
 * started: renamed to this PE's `tag` first, so the PE that started it, if
 * it still runs, cannot remove it from under us, then cut back to `offset`
 * (the bytes its cookie says are written). Throws CookieError: 'missing'
 * when there is no such regular file under the root (or no upload could go
 * there), 'stale' when it is shorter than `offset`.
 */
export async function openForResume(root: string, requested: string, overwrite: boolean, fromTag: string, tag: string, offset: number): Promise<WriteTarget> {
  let place;
  try {
    place = await writePlace(root, requested, overwrite);
  } catch (err) {
    // A path this PE would refuse an upload to: a fresh WRQ gets the reason.
    if (err instanceof TftpRequestError) throw new CookieError('missing', err.message, { cause: err });
    throw err;
  }
  const { path, name, parent, target } = place;
  const from = tempName(parent, name, fromTag);
  const temp = tempName(parent, name, tag);
  try {
    const st = await lstat(from);
    if (!st.isFile()) throw new CookieError('missing', `the upload's temporary file of '${path}' is not a regular file`);
    if (st.size < offset) throw new CookieError('stale', `the upload's temporary file of '${path}' has ${st.size} bytes, not the ${offset} its cookie names`);
    await rename(from, temp);
  } catch (err) {
    if (err instanceof CookieError) throw err;
    throw new CookieError('missing', `no temporary file of this upload of '${path}' here (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
      cause: err,
    });
  }
  // Swapped for something else between the lstat and the rename: back under its name, refused.
  const giveBack = (): Promise<void> => rename(temp, from).catch(() => {});
  let handle: FileHandle;
  try {
    handle = await open(temp, fsConstants.O_WRONLY | fsConstants.O_NOFOLLOW);
  } catch (err) {
    await giveBack();
    throw new CookieError('missing', `the upload's temporary file of '${path}' does not open: ${(err as NodeJS.ErrnoException).code ?? ''}`, { cause: err });
  }
  try {
    const [actual, st] = await Promise.all([fdPath(handle.fd), handle.stat()]);
    if (actual !== undefined && !within(root, actual)) throw new TftpAccessError(`'${path}' leads outside the served directory`);
    if (!st.isFile()) throw new CookieError('missing', `the upload's temporary file of '${path}' is not a regular file`);
    if (st.size < offset) throw new CookieError('stale', `the upload's temporary file of '${path}' has ${st.size} bytes, not the ${offset} its cookie names`);
    await handle.truncate(offset);
    return { path, target, temp, tag, handle };
  } catch (err) {
    await handle.close().catch(() => {});
    await giveBack();
    throw err instanceof TftpRequestError ? err : fsError(path, err);
  }
}

interface CacheEntry {
  bytes: Buffer;
}

/**
 * File contents in chunks, shared by every transfer of the same file version
 * (key = device, inode, size, mtime), least recently used dropped first once
 * over budget. A transfer keeps references to the chunks it is sending, so
 * eviction never pulls data from under a send.
 */
export class ChunkCache {
  readonly chunkBytes: number;
  readonly budget: number;
  /** Transfers read the next chunk ahead only while the chunks they hold stay under this. */
  readonly readAheadLimit: number;
  #used = 0;
  readonly #entries = new Map<string, CacheEntry>();
  readonly #loading = new Map<string, Promise<Buffer>>();
  /** Chunks transfers hold (each counted once however many hold it), and by how many. */
  readonly #holders = new Map<string, { bytes: number; count: number }>();
  #transferBytes = 0;

  constructor(budget: number, chunkBytes: number, readAheadLimit = Number.POSITIVE_INFINITY) {
    this.budget = budget;
    this.chunkBytes = chunkBytes;
    this.readAheadLimit = readAheadLimit;
  }

  get bytesHeld(): number {
    return this.#used;
  }

  /** Bytes of file chunks held by transfers (in the cache or not). */
  get transferBytes(): number {
    return this.#transferBytes;
  }

  /** Whether one more chunk may be read ahead of a transfer. */
  get mayReadAhead(): boolean {
    return this.mayHold(this.chunkBytes);
  }

  mayHold(bytes: number): boolean {
    return this.#transferBytes + bytes <= this.readAheadLimit;
  }

  hold(key: string, bytes: number): void {
    const h = this.#holders.get(key);
    if (h) h.count++;
    else {
      this.#holders.set(key, { bytes, count: 1 });
      this.#transferBytes += bytes;
    }
  }

  drop(key: string): void {
    const h = this.#holders.get(key);
    if (!h) return;
    if (--h.count > 0) return;
    this.#holders.delete(key);
    this.#transferBytes -= h.bytes;
  }

  get(key: string): Buffer | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    this.#entries.delete(key);
    this.#entries.set(key, e);
    return e.bytes;
  }

  /** The chunk, read with `read` once however many transfers ask at the same time. */
  load(key: string, read: () => Promise<Buffer>): Promise<Buffer> {
    const have = this.get(key);
    if (have) return Promise.resolve(have);
    const under = this.#loading.get(key);
    if (under) return under;
    const p: Promise<Buffer> = read().then(
      (bytes) => {
        this.forget(key, p);
        // Also when late, after forget(): the bytes are still this file version's.
        this.#put(key, bytes);
        return bytes;
      },
      (err: unknown) => {
        this.forget(key, p);
        throw err;
      },
    );
    this.#loading.set(key, p);
    return p;
  }

  /** Later load()s of `key` read it again rather than wait on `read` (a read given up on); one started since stays. */
  forget(key: string, read: Promise<Buffer>): void {
    if (this.#loading.get(key) === read) this.#loading.delete(key);
  }

  /** Adds `bytes` (e.g. a converted netascii file) under `key`. */
  put(key: string, bytes: Buffer): void {
    this.#put(key, bytes);
  }

  #put(key: string, bytes: Buffer): void {
    if (bytes.length > this.budget) return;
    const old = this.#entries.get(key);
    if (old) this.#used -= old.bytes.length;
    this.#entries.delete(key);
    this.#entries.set(key, { bytes });
    this.#used += bytes.length;
    for (const [k, e] of this.#entries) {
      if (this.#used <= this.budget) break;
      this.#entries.delete(k);
      this.#used -= e.bytes.length;
    }
  }

  clear(): void {
    this.#entries.clear();
    this.#used = 0;
  }
}

const EMPTY = Buffer.alloc(0);

/** A DATA packet built on its own (an empty last block, netascii). */
function dataPacket(n: number, data: Buffer): Buffer {
  const p = encodeDataPacket(n, data);
  return Buffer.from(p.buffer, p.byteOffset, p.length);
}

/**
 * The blocks of one file for one transfer, as whole DATA packets. packet()
 * is synchronous: it returns the bytes when their chunk is in memory, else
 * undefined and the caller awaits fetch(). Chunks ahead of the transfer are
 * read in the background.
 */
export interface BlockSource {
  /** Bytes the transfer sends in all. */
  readonly size: number;
  readonly blksize: number;
  /** The absolute number of the final (short, maybe empty) block. */
  readonly lastBlock: number;
  /** DATA for absolute block n (header with the wire block number, then the bytes); not to be written to. */
  packet(n: number): Buffer | undefined;
  /** Resolves when packet(n) will return its bytes; rejects with a read error. */
  fetch(n: number): Promise<void>;
  /** DATA for block n read on its own, no chunk (and no read-ahead) taken: what goes out before the client answers. */
  readPacket(n: number): Promise<Buffer>;
  /** Blocks before `n` will not be asked for again: their chunks may go. */
  release(n: number): void;
  /** The transfer gave up waiting for block n: its chunk's read, if shared, is not waited on by later transfers. */
  abandon(n: number): void;
  close(): Promise<void>;
}

export function lastBlockOf(size: number, blksize: number): number {
  return Math.floor(size / blksize) + 1;
}

/** A whole file's bytes in memory (netascii, tests); packets are built per call. */
export class MemoryBlockSource implements BlockSource {
  readonly size: number;
  readonly blksize: number;
  readonly lastBlock: number;
  readonly #bytes: Buffer;
  #onClose: (() => void) | undefined;

  /** `onClose`: the bytes are no longer needed (once). */
  constructor(bytes: Buffer, blksize: number, onClose?: () => void) {
    this.#bytes = bytes;
    this.#onClose = onClose;
    this.size = bytes.length;
    this.blksize = blksize;
    this.lastBlock = lastBlockOf(bytes.length, blksize);
  }

  packet(n: number): Buffer {
    const start = (n - 1) * this.blksize;
    return dataPacket(n, start >= this.size ? EMPTY : this.#bytes.subarray(start, Math.min(start + this.blksize, this.size)));
  }

  fetch(): Promise<void> {
    return Promise.resolve();
  }

  readPacket(n: number): Promise<Buffer> {
    return Promise.resolve(this.packet(n));
  }

  release(): void {}

  abandon(): void {}

  close(): Promise<void> {
    const f = this.#onClose;
    this.#onClose = undefined;
    f?.();
    return Promise.resolve();
  }
}

/**
 * The first read for a transfer waiting on a chunk (a new or resumed
 * transfer, or one that outran the read-ahead): small, so its first block
 * goes out at once; each further read of the chunk is LEAD_GROWTH times
 * larger, staying ahead of the transfer.
 */
const LEAD_BYTES = 64 * 1024;
const LEAD_GROWTH = 4;

/** A chunk coming in: blocks [lo, hi) of it are in `buf` already. */
interface PartialChunk {
  ci: number;
  buf: Buffer;
  lo: number;
  hi: number;
  waiters: { k: number; resolve: () => void }[];
}

/**
 * A file read in chunks through the shared cache, one chunk ahead of the
 * transfer. A chunk holds whole blocks laid out as DATA packets (header,
 * bytes, header, bytes ...), so a block goes to the socket as one view of
 * the chunk: no copy, no header buffer, no list per packet. The wire block
 * number depends only on the absolute one, so transfers with the same
 * blksize share the chunks.
 */
export class FileBlockSource implements BlockSource {
  readonly size: number;
  readonly blksize: number;
  readonly lastBlock: number;
  readonly #file: OpenedFile;
  readonly #cache: ChunkCache;
  /** Blocks per chunk, and bytes per packet. */
  readonly #perChunk: number;
  readonly #stride: number;
  readonly #keyPrefix: string;
  /** Chunks this transfer holds, by index. */
  readonly #held = new Map<number, Buffer>();
  readonly #pending = new Map<number, Promise<void>>();
  /** The shared cache's reads behind #pending, by chunk index. */
  readonly #reads = new Map<number, Promise<Buffer>>();
  /** The chunk packet() used last and its first block (0-based). */
  #curFirst = 0;
  #cur: Buffer | undefined;
  #closed = false;
  #failure: Error | undefined;
  /** The chunk being read in parts for a waiting transfer. */
  #partial: PartialChunk | undefined;

  constructor(file: OpenedFile, blksize: number, cache: ChunkCache) {
    this.#file = file;
    this.#cache = cache;
    this.size = file.size;
    this.blksize = blksize;
    this.lastBlock = lastBlockOf(file.size, blksize);
    this.#perChunk = Math.max(1, Math.floor(cache.chunkBytes / blksize));
    this.#stride = blksize + 4;
    this.#keyPrefix = `${file.key}#${blksize}#`;
  }

  packet(n: number): Buffer | undefined {
    const i = n - 1;
    const start = i * this.blksize;
    if (start >= this.size) return dataPacket(n, EMPTY);
    let chunk = this.#cur;
    let k = i - this.#curFirst;
    if (k < 0 || k >= this.#perChunk || chunk === undefined) {
      const ci = Math.floor(i / this.#perChunk);
      const part = this.#partial;
      if (part?.ci === ci) {
        // The chunk is still coming in: the blocks read so far go out already.
        k = i - ci * this.#perChunk;
        if (k < part.lo || k >= part.hi) return undefined;
        const off = k * this.#stride;
        return part.buf.subarray(off, off + 4 + Math.min(this.blksize, this.size - start));
      }
      chunk = this.#enter(ci, i - ci * this.#perChunk);
      if (!chunk) return undefined;
      k = i - this.#curFirst;
    }
    const off = k * this.#stride;
    return chunk.subarray(off, off + 4 + Math.min(this.blksize, this.size - start));
  }

  fetch(n: number): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    const ci = Math.floor((n - 1) / this.#perChunk);
    if ((n - 1) * this.blksize >= this.size || this.#held.has(ci)) return Promise.resolve();
    // The transfer waits: the chunk comes in from this block on, a small read first (see LEAD_BYTES).
    const k = n - 1 - ci * this.#perChunk;
    const whole = this.#load(ci, k).then(() => {
      if (this.#failure) throw this.#failure;
    });
    const part = this.#partial;
    if (part?.ci !== ci || k < part.lo) return whole;
    if (k < part.hi) {
      whole.catch(() => {});
      return Promise.resolve();
    }
    return Promise.race([whole, new Promise<void>((resolve) => part.waiters.push({ k, resolve }))]);
  }

  async readPacket(n: number): Promise<Buffer> {
    const start = (n - 1) * this.blksize;
    if (start >= this.size) return dataPacket(n, EMPTY);
    // A chunk some other transfer brought in serves as is.
    const ci = Math.floor((n - 1) / this.#perChunk);
    const cached = this.#cache.get(this.#keyPrefix + ci);
    if (cached) {
      const off = (n - 1 - ci * this.#perChunk) * this.#stride;
      return cached.subarray(off, off + 4 + Math.min(this.blksize, this.size - start));
    }
    const length = Math.min(this.blksize, this.size - start);
    const p = Buffer.allocUnsafe(4 + length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.#file.handle.read(p, 4 + done, length - done, start + done);
      if (bytesRead === 0) throw new Error(`file shrank while being read (at byte ${start + done})`);
      done += bytesRead;
    }
    writeDataHeader(p, 0, n);
    return p;
  }

  release(n: number): void {
    const keepFrom = Math.floor((n - 1) / this.#perChunk);
    for (const i of this.#held.keys()) if (i < keepFrom) this.#unhold(i);
  }

  abandon(n: number): void {
    const ci = Math.floor((n - 1) / this.#perChunk);
    const read = this.#reads.get(ci);
    if (read) this.#cache.forget(this.#keyPrefix + ci, read);
  }

  #hold(ci: number, buf: Buffer): void {
    if (this.#held.has(ci)) return;
    this.#held.set(ci, buf);
    this.#cache.hold(this.#keyPrefix + ci, buf.length);
  }

  #unhold(ci: number): void {
    if (this.#held.delete(ci)) this.#cache.drop(this.#keyPrefix + ci);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const i of [...this.#held.keys()]) this.#unhold(i);
    this.#cur = undefined;
    // Reads in flight use the handle; close it once they are done.
    await Promise.allSettled([...this.#pending.values()]);
    await this.#file.handle.close().catch(() => {});
  }

  /** Moves the fast path to chunk `ci` and starts reading the one after it; when `ci` is not in, starts reading it from block `k` of it. */
  #enter(ci: number, k: number): Buffer | undefined {
    const chunk = this.#chunk(ci);
    if (chunk) {
      this.#curFirst = ci * this.#perChunk;
      this.#cur = chunk;
      // Read ahead only within the global bound: the chunk being sent is always allowed, the next one is not.
      if ((ci + 1) * this.#perChunk * this.blksize < this.size && !this.#held.has(ci + 1) && this.#cache.mayReadAhead) void this.#load(ci + 1).catch(() => {});
    } else {
      void this.#load(ci, k).catch(() => {});
    }
    return chunk;
  }

  #chunk(ci: number): Buffer | undefined {
    let c = this.#held.get(ci);
    if (c) return c;
    c = this.#cache.get(this.#keyPrefix + ci);
    if (c) this.#hold(ci, c);
    return c;
  }

  /**
   * Reads chunk `ci` through the cache. `from` (a block index within the
   * chunk) is where a waiting transfer needs it: the chunk then comes in
   * from there in growing reads, each usable as soon as it is in, and the
   * blocks before `from` last; without it, in one read (read-ahead).
   */
  #load(ci: number, from?: number): Promise<void> {
    const pending = this.#pending.get(ci);
    if (pending) return pending;
    const blksize = this.blksize;
    const first = ci * this.#perChunk;
    const offset = first * blksize;
    const length = Math.min(this.#perChunk * blksize, this.size - offset);
    const blocks = Math.ceil(length / blksize);
    const stride = this.#stride;
    const file = this.#file;
    const read = this.#cache.load(this.#keyPrefix + ci, async () => {
      const buf = Buffer.allocUnsafe(blocks * 4 + length);
      // Blocks [a, b) as packets in place: their bytes are read to the end of the range's space, then each block moves down to its packet's place (ascending: none overwrites one not yet moved).
      const fill = async (a: number, b: number): Promise<void> => {
        const start = a * blksize;
        const len = Math.min(b * blksize, length) - start;
        const at = a * stride + 4 * (b - a);
        let done = 0;
        while (done < len) {
          const { bytesRead } = await file.handle.read(buf, at + done, len - done, offset + start + done);
          // The file shrank under us (it was changed in place): the transfer ends with an error.
          if (bytesRead === 0) throw new Error(`file shrank while being read (at byte ${offset + start + done})`);
          done += bytesRead;
        }
        for (let k = a; k < b; k++) {
          const o = k * stride;
          const src = at + (k - a) * blksize;
          buf.copyWithin(o + 4, src, Math.min(src + blksize, at + len));
          writeDataHeader(buf, o, first + k + 1);
        }
      };
      if (from === undefined || from >= blocks) {
        await fill(0, blocks);
        return buf;
      }
      // A fresh chunk costs a page fault per page (~15 ms for 4 MiB on a busy VM): a transfer starting here waits for one small read only.
      const part: PartialChunk = { ci, buf, lo: from, hi: from, waiters: [] };
      this.#partial = part;
      let step = Math.max(1, Math.floor(LEAD_BYTES / blksize));
      while (part.hi < blocks) {
        const b = Math.min(blocks, part.hi + step);
        await fill(part.hi, b);
        part.hi = b;
        step *= LEAD_GROWTH;
        const ready = part.waiters.filter((w) => w.k < b);
        part.waiters = part.waiters.filter((w) => w.k >= b);
        for (const w of ready) w.resolve();
      }
      // The next chunk is read while the blocks before `from` are: the cache shares only whole chunks.
      // (Within the global bound, counting this chunk, which is not held yet.)
      if (offset + length < this.size && !this.#closed && !this.#held.has(ci + 1) && this.#cache.mayHold(buf.length + this.#cache.chunkBytes)) {
        void this.#load(ci + 1).catch(() => {});
      }
      if (from > 0) await fill(0, from);
      return buf;
    });
    // Also when late, the transfer given up and this closed: nothing is held, the handle then closes.
    const p = read.then(
      (buf) => {
        this.#pending.delete(ci);
        this.#reads.delete(ci);
        if (this.#partial?.ci === ci) this.#partial = undefined;
        if (!this.#closed) this.#hold(ci, buf);
      },
      (err: unknown) => {
        this.#pending.delete(ci);
        this.#reads.delete(ci);
        if (this.#partial?.ci === ci) this.#partial = undefined;
        this.#failure = err instanceof Error ? err : new Error(String(err));
        throw this.#failure;
      },
    );
    this.#pending.set(ci, p);
    this.#reads.set(ci, read);
    return p;
  }
}

/** Reads the whole of an opened file (netascii conversion needs it all). */
export async function readWhole(file: OpenedFile): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(file.size);
  let done = 0;
  while (done < file.size) {
    const { bytesRead } = await file.handle.read(buf, done, file.size - done, done);
    if (bytesRead === 0) throw new Error(`file shrank while being read (at byte ${done})`);
    done += bytesRead;
  }
  return buf;
}
