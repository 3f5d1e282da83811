/**
 * FileBlockSource: a transfer that waits for a chunk (a new or resumed one)
 * gets its first blocks after one small read, not after the whole chunk
 * (a fresh 4 MiB buffer costs ~15 ms of page faults on a busy VM: the
 * stall of a failover); the chunk still ends up whole in the cache.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkCache, FileBlockSource, openForRead, type OpenedFile } from '../../lib/tftp/server/files.js';
import { tempDir } from './server-helpers.js';

const MiB = 2 ** 20;
const BLKSIZE = 1468;
const CHUNK = MiB;
let dir: { path: string; remove: () => Promise<void> };
let data: Buffer;

beforeAll(async () => {
  dir = await tempDir('rserpool-file-source-');
  // Three whole chunks and a bit, ending in a short block.
  data = randomBytes(3 * CHUNK + 1000);
  await writeFile(join(dir.path, 'f.bin'), data);
});
afterAll(() => dir.remove());

/** The file opened for reading, with every read's length and position recorded. */
async function openRecorded(): Promise<{ file: OpenedFile; reads: { length: number; position: number }[] }> {
  const file = await openForRead(dir.path, 'f.bin');
  const reads: { length: number; position: number }[] = [];
  const read = file.handle.read.bind(file.handle) as (b: Buffer, o: number, l: number, p: number) => Promise<{ bytesRead: number; buffer: Buffer }>;
  Object.assign(file.handle, {
    read: (b: Buffer, o: number, l: number, p: number) => {
      reads.push({ length: l, position: p });
      return read(b, o, l, p);
    },
  });
  return { file, reads };
}

function expected(n: number): Buffer {
  const body = data.subarray((n - 1) * BLKSIZE, Math.min(n * BLKSIZE, data.length));
  return Buffer.concat([Buffer.from([0, 3, (n >> 8) & 0xff, n & 0xff]), body]);
}

/** Every packet from `first` to the last, as a transfer takes them (fetch on a miss). */
async function sendAll(source: FileBlockSource, first: number): Promise<void> {
  for (let n = first; n <= source.lastBlock; n++) {
    let p = source.packet(n);
    if (p === undefined) {
      await source.fetch(n);
      p = source.packet(n);
    }
    expect(p, `block ${n}`).toBeDefined();
    expect(Buffer.compare(p!, expected(n)), `block ${n}`).toBe(0);
  }
}

describe('FileBlockSource', () => {
  it('serves a transfer resumed mid-chunk after one small read, then the whole file byte-identical', async () => {
    const { file, reads } = await openRecorded();
    const cache = new ChunkCache(64 * MiB, CHUNK);
    const source = new FileBlockSource(file, BLKSIZE, cache);
    const perChunk = Math.floor(CHUNK / BLKSIZE);
    // A resume in the middle of the second chunk.
    const first = perChunk + 300;
    expect(source.packet(first)).toBeUndefined();
    await source.fetch(first);
    expect(Buffer.compare(source.packet(first)!, expected(first))).toBe(0);
    expect(reads[0]!.position).toBe((first - 1) * BLKSIZE);
    expect(reads[0]!.length).toBeLessThanOrEqual(64 * 1024);
    await sendAll(source, first);
    await source.close();
    // The chunk it started in went into the cache whole: another transfer reads it from block 1 of it without a read.
    const again = await openRecorded();
    const other = new FileBlockSource(again.file, BLKSIZE, cache);
    await sendAll(other, perChunk + 1);
    expect(again.reads.filter((r) => r.position < 2 * perChunk * BLKSIZE)).toEqual([]);
    await other.close();
  });

  it('reads ahead in whole chunks once under way, and a new transfer from block 1 also starts small', async () => {
    const { file, reads } = await openRecorded();
    const source = new FileBlockSource(file, BLKSIZE, new ChunkCache(0, CHUNK));
    await sendAll(source, 1);
    await source.close();
    expect(reads[0]).toEqual({ length: Math.floor((64 * 1024) / BLKSIZE) * BLKSIZE, position: 0 });
    // Chunks after the first were read ahead in one read each.
    const perChunk = Math.floor(CHUNK / BLKSIZE);
    for (const c of [1, 2, 3])
      expect(reads.some((r) => r.position === c * perChunk * BLKSIZE && r.length === Math.min(perChunk * BLKSIZE, data.length - c * perChunk * BLKSIZE))).toBe(
        true,
      );
  });
});
