/**
 * Issue 11 findings 3 and 4 at the gateway: a flood of RRQs from one
 * address (spoofed or not, they never answer) starts at most
 * maxHandshakesPerSource transfers, each answered with one packet and
 * reading no more than one upstream window from the pool for it, gone at
 * the handshake deadline; meanwhile a client at another address downloads.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTftpGateway, type GatewayTransferEnd, type GatewayTransferStatus, type TftpGateway } from '../../lib/tftp/gateway/index.js';
import { createTftpServer, type TftpServer } from '../../lib/tftp/server/index.js';
import type { PeFinder, PeTarget } from '../../lib/tftp/client/index.js';
import { TftpOpcode } from '../../protocols/tftp/types.js';
import { withDeadline } from '../transport/util.js';
import { RawPeer, download, tempDir } from '../tftp/server-helpers.js';

const FLOOD = 24;
const PER_SOURCE = 8;
const UPSTREAM_WINDOW = 16 * 1468;
const big = randomBytes(16 << 20);
const small = randomBytes(300_000);
let dir: { path: string; remove: () => Promise<void> };
let pe: TftpServer;
let gateway: TftpGateway;

beforeAll(async () => {
  dir = await tempDir('rserpool-gw-flood-');
  await writeFile(join(dir.path, 'big.bin'), big);
  await writeFile(join(dir.path, 'small.bin'), small);
  pe = createTftpServer({ root: dir.path, port: 0, secret: 'gateway flood', maxHandshakesPerSource: 1000 });
  await pe.start();
  const target: PeTarget = { host: '127.0.0.1', port: pe.address.port };
  const finder: PeFinder = { next: (exclude) => Promise.resolve(exclude.has(`${target.host}:${target.port}`) ? undefined : target), unreachable: () => {} };
  gateway = createTftpGateway(
    { listen: { host: '127.0.0.1', port: 0 }, handle: 'flood', blksize: 1468, windowsize: 16, handshakeMs: 1500, maxHandshakesPerSource: PER_SOURCE },
    { finder: () => finder },
  );
  await gateway.start();
});
afterAll(async () => {
  await gateway.close();
  await pe.close();
  await dir.remove();
});

it('a flood of unanswered RRQs from one address: a few transfers, one packet each, one upstream window each, gone at the deadline', async () => {
  const flooders = await Promise.all(Array.from({ length: FLOOD }, () => RawPeer.open('127.0.0.1')));
  try {
    // The flood's transfers, and the legitimate one.
    const ends: GatewayTransferEnd[] = [];
    const allEnded = new Promise<void>((resolve) =>
      gateway.on('transfer-end', (e) => {
        if (ends.push(e) === PER_SOURCE + 1) resolve();
      }),
    );
    for (const f of flooders)
      f.sendPacket(
        {
          opcode: TftpOpcode.Rrq,
          filename: 'big.bin',
          mode: 'octet',
          options: [
            ['blksize', '1468'],
            ['windowsize', '16'],
          ],
        },
        gateway.address.port,
      );
    // A client at another address is not held up by them.
    const legit = await RawPeer.open('127.0.0.2');
    let during: GatewayTransferStatus[] = [];
    try {
      const r = await download(legit, gateway.address.port, 'small.bin', [
        ['blksize', '1468'],
        ['windowsize', '8'],
      ]);
      expect(r.data.equals(small)).toBe(true);
      during = gateway.transfers().filter((t) => t.client.address === '127.0.0.1');
    } finally {
      legit.close();
    }
    expect(during.length).toBeLessThanOrEqual(PER_SOURCE);
    // Nothing read ahead for a client that never answered, beyond the window the PE sent.
    for (const t of during) expect(t.received).toBeLessThanOrEqual(UPSTREAM_WINDOW);
    await withDeadline(allEnded, 15_000, 'the flood transfers ending');
    const ended = ends.filter((e) => e.client.address === '127.0.0.1');
    expect(ended).toHaveLength(PER_SOURCE);
    expect(ended.every((e) => !e.ok && /did not answer/.test(e.error?.message ?? ''))).toBe(true);
    expect(gateway.transfers().filter((t) => t.client.address === '127.0.0.1')).toEqual([]);
    // One packet (the OACK) per transfer started, nothing for the ones refused, nothing resent.
    const answers = flooders.map((f) => f.pending);
    expect(answers.filter((n) => n > 1)).toEqual([]);
    expect(answers.reduce((a, b) => a + b, 0)).toBe(PER_SOURCE);
  } finally {
    for (const f of flooders) f.close();
  }
});

it('full of transfers whose clients never answered, a PE and a gateway still take a client that answers', async () => {
  const LIMIT = 10;
  const s = createTftpServer({ root: dir.path, port: 0, secret: 'gateway flood', maxTransfers: LIMIT, maxHandshakesPerSource: 1000 });
  await s.start();
  const target: PeTarget = { host: '127.0.0.1', port: pe.address.port };
  const finder: PeFinder = { next: (exclude) => Promise.resolve(exclude.has(`${target.host}:${target.port}`) ? undefined : target), unreachable: () => {} };
  const gw = createTftpGateway(
    { listen: { host: '127.0.0.1', port: 0 }, handle: 'flood', maxTransfers: LIMIT, maxHandshakesPerSource: 1000 },
    { finder: () => finder },
  );
  await gw.start();
  const flooders = await Promise.all(Array.from({ length: 2 * LIMIT }, () => RawPeer.open('127.0.0.1')));
  try {
    for (const [i, port] of [s.address.port, gw.address.port].entries()) {
      const mine = flooders.slice(i * LIMIT, (i + 1) * LIMIT);
      for (const f of mine) f.sendPacket({ opcode: TftpOpcode.Rrq, filename: 'big.bin', mode: 'octet', options: [] }, port);
      // Every slot taken: each flooder got its first DATA.
      for (const f of mine) expect((await f.nextTftp(5_000)).packet).toMatchObject({ opcode: TftpOpcode.Data, block: 1 });
      const legit = await RawPeer.open('127.0.0.2');
      try {
        const r = await download(legit, port, 'small.bin', [['blksize', '1468']]);
        expect(r.data.equals(small)).toBe(true);
      } finally {
        legit.close();
      }
    }
    expect(s.activeTransfers).toBeLessThanOrEqual(LIMIT);
    expect(gw.activeTransfers).toBeLessThanOrEqual(LIMIT);
  } finally {
    for (const f of flooders) f.close();
    await gw.close();
    await s.close();
  }
});
