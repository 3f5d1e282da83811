/**
 * Issue 13 item 3 (atftp aborting against the PE): after a duplicate ACK
 * rewound the window, the ACK for the window sent before the rewind must
 * still count. A client (atftp) that sent it never repeats it, so dropping
 * it stalls the transfer until a timeout, and atftp gives up.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import { createTftpServer, type TftpServer } from '../../lib/tftp/server/index.js';
import { TftpOpcode } from '../../protocols/tftp/types.js';
import { RawPeer, tempDir } from '../tftp/server-helpers.js';

let dir: { path: string; remove: () => Promise<void> };
let server: TftpServer;
let peer: RawPeer;
const file = randomBytes(512 * 40 + 100);

beforeAll(async () => {
  dir = await tempDir('rserpool-rewind-');
  await writeFile(join(dir.path, 'f.bin'), file);
  // The clock never moves: nothing is retransmitted on a timer, so only the ACKs drive the transfer.
  server = createTftpServer({ root: dir.path, port: 0, secret: 'rewind test' }, { clock: new ManualClock() });
  await server.start();
  peer = await RawPeer.open();
});
afterAll(async () => {
  peer.close();
  await server.close();
  await dir.remove();
});

async function dataBlock(): Promise<number> {
  const { packet } = await peer.nextTftp(2_000);
  if (packet.opcode !== TftpOpcode.Data) throw new Error(`expected DATA, got opcode ${packet.opcode}`);
  return packet.block;
}

it('takes the ACK for the window sent before a rewind, and goes on', async () => {
  peer.sendPacket({ opcode: TftpOpcode.Rrq, filename: 'f.bin', mode: 'octet', options: [['windowsize', '8']] }, server.address.port);
  const oack = await peer.nextTftp(2_000);
  expect(oack.packet.opcode).toBe(TftpOpcode.Oack);
  const tid = oack.port;
  peer.ack(0, tid);
  const first: number[] = [];
  for (let i = 0; i < 8; i++) first.push(await dataBlock());
  expect(first).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  // A duplicate ACK 0 (as atftp sends when it saw block 1 late) rewinds the
  // window; in the same burst comes atftp's ACK for the whole first window.
  peer.ack(0, tid);
  peer.ack(8, tid);
  // The PE resends some of 1..8 (the rewind), then must go on with 9.
  const seen: number[] = [];
  for (;;) {
    const b = await dataBlock();
    seen.push(b);
    if (b > 8) break;
  }
  expect(seen.at(-1)).toBe(9);
});
