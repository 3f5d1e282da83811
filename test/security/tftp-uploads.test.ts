/**
 * Issue 11 finding 6 (uploads and the file pool): two concurrent uploads of
 * one name without overwrite: exactly one wins (the check was at WRQ time,
 * the rename at the end, so both "succeeded"); temporary files a crashed
 * process left are removed at start; a FIFO under the root is refused at
 * once instead of blocking a thread of the file pool until a writer comes.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createTftpServer, type TftpServer, type TftpServerInit } from '../../lib/tftp/server/index.js';
import { TftpErrorCode, TftpOpcode } from '../../protocols/tftp/types.js';
import { RawPeer, download, tempDir } from '../tftp/server-helpers.js';

const run = promisify(execFile);
let dir: { path: string; remove: () => Promise<void> };
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  dir = await tempDir('rserpool-uploads-');
  await writeFile(join(dir.path, 'plain.bin'), randomBytes(10_000));
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  await dir.remove();
});

async function server(init: Partial<TftpServerInit> = {}): Promise<TftpServer> {
  const s = createTftpServer({ root: dir.path, port: 0, secret: 'uploads', writable: true, ...init });
  await s.start();
  cleanups.push(() => s.close());
  return s;
}

async function peer(): Promise<RawPeer> {
  const p = await RawPeer.open();
  cleanups.push(() => p.close());
  return p;
}

it('two concurrent uploads of one name: exactly one wins without overwrite', async () => {
  const s = await server();
  const a = await peer();
  const b = await peer();
  const wrq = { opcode: TftpOpcode.Wrq, filename: 'same.bin', mode: 'octet', options: [] } as const;
  // Both pass the check at WRQ time: neither file is there yet.
  a.sendPacket(wrq, s.address.port);
  b.sendPacket(wrq, s.address.port);
  const ackA = await a.nextTftp();
  const ackB = await b.nextTftp();
  expect(ackA.packet).toMatchObject({ opcode: TftpOpcode.Ack, block: 0 });
  expect(ackB.packet).toMatchObject({ opcode: TftpOpcode.Ack, block: 0 });
  a.sendPacket({ opcode: TftpOpcode.Data, block: 1, data: Buffer.from('from a') }, ackA.port);
  b.sendPacket({ opcode: TftpOpcode.Data, block: 1, data: Buffer.from('from b') }, ackB.port);
  const answers = [(await a.nextTftp()).packet, (await b.nextTftp()).packet];
  const won = answers.filter((p) => p.opcode === TftpOpcode.Ack);
  const lost = answers.filter((p) => p.opcode === TftpOpcode.Error);
  expect(won).toHaveLength(1);
  expect(lost).toEqual([expect.objectContaining({ code: TftpErrorCode.FileAlreadyExists })]);
  const winner = answers[0]!.opcode === TftpOpcode.Ack ? 'from a' : 'from b';
  expect((await readFile(join(dir.path, 'same.bin'))).toString()).toBe(winner);
  // Nothing of the loser is left behind.
  expect((await readdir(dir.path)).filter((n) => n.endsWith('.part'))).toEqual([]);
});

it('removes the temporary files of a process that died mid-upload, at start, once no cookie can name them', async () => {
  // A pid that is certainly not running: a child's, once it exited.
  const child = spawn(process.execPath, ['-e', '']);
  const pid = child.pid!;
  await new Promise((resolve) => child.on('exit', resolve));
  await mkdir(join(dir.path, 'sub'), { recursive: true });
  const stale = [join(dir.path, `.boot.img.${pid}-0123456789ab.part`), join(dir.path, 'sub', `.x.bin.${pid}-ba9876543210.part`)];
  const live = join(dir.path, `.live.bin.${process.pid}-0123456789ab.part`);
  const recent = join(dir.path, `.recent.bin.${pid}-0123456789ab.part`);
  for (const f of [...stale, live, recent]) await writeFile(f, 'partial');
  // Written before the cookie lifetime (10 minutes): no client can resume them any more.
  const old = new Date(Date.now() - 11 * 60_000);
  for (const f of stale) await utimes(f, old, old);
  await server();
  for (const f of stale) await expect(stat(f)).rejects.toMatchObject({ code: 'ENOENT' });
  // A live process's upload (another PE on the same root) stays, and so does a dead one's a client may still resume elsewhere.
  expect((await stat(live)).isFile()).toBe(true);
  expect((await stat(recent)).isFile()).toBe(true);
});

it('refuses a FIFO under the root at once, and the file pool keeps serving', async () => {
  const fifo = join(dir.path, 'fifo');
  await run('mkfifo', [fifo]);
  // Were the opens to block, a writer end opened here at the end lets them go, so the test process can exit.
  cleanups.push(async () => {
    const h = await open(fifo, fsConstants.O_RDWR | fsConstants.O_NONBLOCK);
    await h.close();
  });
  const s = await server();
  const peers = await Promise.all(Array.from({ length: 6 }, () => peer()));
  // More requests than the thread pool has threads (4 by default).
  for (const p of peers) p.sendPacket({ opcode: TftpOpcode.Rrq, filename: 'fifo', mode: 'octet', options: [] }, s.address.port);
  for (const p of peers) {
    const { packet } = await p.nextTftp(3_000);
    expect(packet).toMatchObject({ opcode: TftpOpcode.Error, code: TftpErrorCode.AccessViolation });
  }
  const r = await download(await peer(), s.address.port, 'plain.bin');
  expect(r.data.equals(await readFile(join(dir.path, 'plain.bin')))).toBe(true);
  // An upload onto it is refused too.
  const w = await peer();
  w.sendPacket({ opcode: TftpOpcode.Wrq, filename: 'fifo', mode: 'octet', options: [] }, s.address.port);
  expect((await w.nextTftp(3_000)).packet).toMatchObject({ opcode: TftpOpcode.Error, code: TftpErrorCode.AccessViolation });
});
