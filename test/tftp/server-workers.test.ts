/** The TFTP server with its transfers on worker threads: they run on several threads, and a thread that dies is replaced. */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import { createTftpServer, type TftpServer, type TftpServerInit, type TransferInfo } from '../../lib/tftp/server/index.js';
import { transferThreadsOf } from '../../lib/tftp/server/server.js';
import { InvalidOptionError } from '../../lib/errors.js';
import { TftpOpcode, type TftpOptionList } from '../../protocols/tftp/types.js';
import { COOKIE_OPTION } from '../../lib/tftp/contract.js';
import { waitFor } from '../transport/util.js';
import { RawPeer, download, tempDir } from './server-helpers.js';

let root: string;
let removeRoot: () => Promise<void>;
const content = randomBytes(200_000);

beforeAll(async () => {
  const d = await tempDir('rserpool-tftp-workers-');
  root = d.path;
  removeRoot = d.remove;
  await writeFile(join(root, 'file.bin'), content);
  await mkdir(join(root, 'uploads'));
});
afterAll(async () => {
  await removeRoot();
});

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(init: Partial<TftpServerInit> = {}): Promise<TftpServer> {
  const s = createTftpServer({ root, port: 0, secret: 'workers test secret', maxHandshakesPerSource: 16, handshakeMs: 30_000, ...init });
  await s.start();
  cleanups.push(() => s.close());
  return s;
}

async function peer(): Promise<RawPeer> {
  const p = await RawPeer.open();
  cleanups.push(() => p.close());
  return p;
}

/** Starts a download and leaves it at its first DATA (nothing ACKed): it stays on its thread. */
async function hold(s: TftpServer): Promise<{ info: TransferInfo; port: number }> {
  const started = waitFor(s, 'transfer-start', { timeoutMs: 15_000 });
  const p = await peer();
  p.sendPacket({ opcode: TftpOpcode.Rrq, filename: 'file.bin', mode: 'octet', options: [] }, s.address.port);
  const first = await p.nextTftp();
  expect(first.packet).toMatchObject({ opcode: TftpOpcode.Data, block: 1 });
  const [info] = await started;
  return { info, port: first.port };
}

describe('TFTP server with worker threads', () => {
  it('runs transfers on each of its worker threads, none on its own, and reports them as in-thread transfers are', async () => {
    const s = await server({ workers: 2 });
    expect(s.workers).toBe(2);
    const threads = transferThreadsOf(s).map((w) => w.threadId);
    expect(threads).toHaveLength(2);
    const held = [await hold(s), await hold(s)];
    expect(s.activeTransfers).toBe(2);
    // The least loaded thread takes the next transfer: one each.
    expect(held.map((h) => h.info.threadId).sort()).toEqual([...threads].sort());
    expect(threads).not.toContain(threadId);
    const ends = waitFor(s, 'transfer-end', { timeoutMs: 15_000 });
    const r = await download(await peer(), s.address.port, 'file.bin', [['blksize', '1468']]);
    expect(r.data.equals(content)).toBe(true);
    expect((await ends)[1]).toMatchObject({ reason: 'done', bytes: content.length });
  });

  it('in-thread (workers 0) runs transfers on its own thread', async () => {
    const s = await server({ workers: 0 });
    expect(s.workers).toBe(0);
    expect(transferThreadsOf(s)).toEqual([]);
    const { info } = await hold(s);
    expect(info.threadId).toBe(threadId);
  });

  it('a worker thread that dies ends its transfers with an error and is replaced; the server carries on', async () => {
    const s = await server({ workers: 2 });
    const before = transferThreadsOf(s);
    const { info } = await hold(s);
    const victim = before.find((w) => w.threadId === info.threadId)!;
    const ended = waitFor(s, 'transfer-end', { timeoutMs: 15_000 });
    await victim.terminate();
    const [endedInfo, result] = await ended;
    expect(endedInfo.id).toBe(info.id);
    expect(result.reason).toBe('error');
    expect(result.error?.message).toMatch(new RegExp(`transfer thread ${info.threadId} failed`));
    expect(s.activeTransfers).toBe(0);
    // A new thread in its place at once.
    const after = transferThreadsOf(s);
    expect(after).toHaveLength(2);
    expect(after.map((w) => w.threadId)).not.toContain(info.threadId);
    const fresh = after.find((w) => !before.includes(w))!;
    // Both threads take transfers again, the new one included.
    const held = [await hold(s), await hold(s)];
    expect(held.map((h) => h.info.threadId)).toContain(fresh.threadId);
    const r = await download(await peer(), s.address.port, 'file.bin');
    expect(r.data.equals(content)).toBe(true);
  });

  it("a dying thread's upload: without cookies its temporary file goes, with cookies it stays for the client to resume", async () => {
    const s = await server({ workers: 2, writable: true });
    const temporaries = async (name: string) => (await readdir(join(root, 'uploads'))).filter((n) => n.startsWith(`.${name}.`));
    const cases: [string, TftpOptionList, number][] = [
      ['plain.bin', [], 0],
      ['resumable.bin', [[COOKIE_OPTION, '0']], 1],
    ];
    for (const [name, options, left] of cases) {
      const started = waitFor(s, 'transfer-start', { timeoutMs: 15_000 });
      const p = await peer();
      p.sendPacket({ opcode: TftpOpcode.Wrq, filename: `uploads/${name}`, mode: 'octet', options }, s.address.port);
      const first = await p.nextTftp(10_000, () => {});
      p.sendPacket({ opcode: TftpOpcode.Data, block: 1, data: Buffer.alloc(512, 1) }, first.port);
      expect((await p.nextTftp(10_000, () => {})).packet).toMatchObject({ opcode: TftpOpcode.Ack, block: 1 });
      const [info] = await started;
      expect(await temporaries(name)).toHaveLength(1);
      const ended = waitFor(s, 'transfer-end', { timeoutMs: 15_000 });
      await transferThreadsOf(s)
        .find((w) => w.threadId === info.threadId)!
        .terminate();
      expect((await ended)[1].reason).toBe('error');
      expect(await temporaries(name)).toHaveLength(left);
    }
  });

  it('refuses a clock of its own with workers: transfers in threads run on the system clock', () => {
    expect(() => createTftpServer({ root, port: 0, workers: 2 }, { clock: new ManualClock() })).toThrow(InvalidOptionError);
    expect(() => createTftpServer({ root, port: 0, workers: 2 }, { wallClock: () => 0 })).toThrow(InvalidOptionError);
  });
});
