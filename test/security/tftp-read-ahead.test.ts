/**
 * Issue 11 finding 4 (memory without a handshake): a PE reads nothing of a
 * file for a client that has not answered, and what established transfers
 * read ahead of their clients is bounded for all of them together
 * (readAheadBytes): each may hold the chunk it sends from, the next chunk is
 * read ahead only within the bound.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTftpServer, type TftpServer } from '../../lib/tftp/server/index.js';
import { TftpOpcode } from '../../protocols/tftp/types.js';
import { RawPeer, tempDir } from '../tftp/server-helpers.js';

const MiB = 2 ** 20;
const FILES = 6;
const CHUNK = MiB;
const READ_AHEAD = 2 * MiB;
let dir: { path: string; remove: () => Promise<void> };
let server: TftpServer;

beforeAll(async () => {
  dir = await tempDir('rserpool-read-ahead-');
  for (let i = 0; i < FILES; i++) await writeFile(join(dir.path, `f${i}.bin`), randomBytes(4 * MiB));
  // No cache: every byte in memory is one a transfer holds.
  server = createTftpServer({ root: dir.path, port: 0, secret: 'read-ahead', cacheBytes: 0, chunkBytes: CHUNK, readAheadBytes: READ_AHEAD });
  await server.start();
});
afterAll(async () => {
  await server.close();
  await dir.remove();
});

/** The largest value `f` takes, sampled on every turn of the event loop for `ms`. */
async function peak(f: () => number, ms: number): Promise<number> {
  const until = Date.now() + ms;
  let max = f();
  while (Date.now() < until) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    max = Math.max(max, f());
  }
  return max;
}

it('reads nothing before the client answers, and reads ahead within the global bound after', async () => {
  const peers = await Promise.all(Array.from({ length: FILES }, () => RawPeer.open()));
  try {
    const tids: number[] = [];
    for (let i = 0; i < FILES; i++) {
      peers[i]!.sendPacket(
        {
          opcode: TftpOpcode.Rrq,
          filename: `f${i}.bin`,
          mode: 'octet',
          options: [
            ['blksize', '1468'],
            ['windowsize', '4'],
          ],
        },
        server.address.port,
      );
    }
    for (const p of peers) {
      const o = await p.nextTftp(5_000);
      expect(o.packet.opcode).toBe(TftpOpcode.Oack);
      tids.push(o.port);
    }
    expect(server.activeTransfers).toBe(FILES);
    expect(await peak(() => server.transferBytes, 100)).toBe(0);
    // Each client ACKs the OACK, takes one window, and stalls.
    peers.forEach((p, i) => p.ack(0, tids[i]!));
    for (const p of peers) for (let b = 1; b <= 4; b++) expect((await p.nextTftp(5_000)).packet).toMatchObject({ opcode: TftpOpcode.Data, block: b });
    const most = await peak(() => server.transferBytes, 300);
    expect(most).toBeGreaterThanOrEqual(FILES * CHUNK);
    expect(most).toBeLessThanOrEqual(FILES * CHUNK + READ_AHEAD);
  } finally {
    for (const p of peers) p.close();
  }
});

it('converts netascii files (read whole, before the client answers) only within the same bound', async () => {
  const text = Buffer.from('line\n'.repeat(140_000)); // 700 kB, about 840 kB as netascii
  for (const n of ['t0', 't1', 't2']) await writeFile(join(dir.path, `${n}.txt`), text);
  const s = createTftpServer({ root: dir.path, port: 0, secret: 'read-ahead', cacheBytes: 0, chunkBytes: CHUNK, readAheadBytes: READ_AHEAD });
  await s.start();
  const peers = await Promise.all(['t0', 't1', 't2'].map(() => RawPeer.open()));
  try {
    peers.forEach((p, i) => p.sendPacket({ opcode: TftpOpcode.Rrq, filename: `t${i}.txt`, mode: 'netascii', options: [] }, s.address.port));
    const first = await Promise.all(peers.map(async (p) => (await p.nextTftp(5_000)).packet));
    // Room for one whole file (twice its size, what the conversion may need), not three.
    expect(first.filter((p) => p.opcode === TftpOpcode.Data)).toHaveLength(1);
    expect(first.filter((p) => p.opcode === TftpOpcode.Error)).toHaveLength(2);
    expect(s.transferBytes).toBeLessThanOrEqual(READ_AHEAD);
    expect(s.transferBytes).toBeGreaterThan(0);
  } finally {
    for (const p of peers) p.close();
    await s.close();
  }
  expect(s.transferBytes).toBe(0);
});
