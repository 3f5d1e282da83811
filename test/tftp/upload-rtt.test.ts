/**
 * The upload client's first round trip: the request, sent once, and the PE's
 * answer time it, so a lost first ACK costs a retransmission timeout, not
 * the whole timeout. A scripted PE on loopback; the client's clock is manual.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { afterEach, expect, it } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import { silentLogger } from '../../lib/logger.js';
import { BufferSource } from '../../lib/tftp/client/sender.js';
import { upload } from '../../lib/tftp/client/upload.js';
import { decodeTftpPacket, encodeTftpPacket } from '../../protocols/tftp/codec.js';
import { TftpOpcode, type TftpPacket } from '../../protocols/tftp/types.js';

const DEADLINE_MS = 5_000;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** A UDP endpoint of the scripted PE, its datagrams queued in order. */
async function endpoint(): Promise<{ socket: Socket; next: () => Promise<{ packet: TftpPacket; rinfo: RemoteInfo }> }> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  cleanups.push(() => socket.close());
  const queue: { packet: TftpPacket; rinfo: RemoteInfo }[] = [];
  let wake: (() => void) | undefined;
  socket.on('message', (msg, rinfo) => {
    queue.push({ packet: decodeTftpPacket(msg), rinfo });
    wake?.();
  });
  const next = async (): Promise<{ packet: TftpPacket; rinfo: RemoteInfo }> => {
    const deadline = Date.now() + DEADLINE_MS;
    while (queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`nothing within ${DEADLINE_MS} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(t);
          wake = undefined;
          resolve();
        };
      });
    }
    return queue.shift()!;
  };
  return { socket, next };
}

it('resends after a retransmission timeout from the request-to-OACK round trip when the first window is not acknowledged', async () => {
  const clock = new ManualClock();
  const listen = await endpoint();
  const tid = await endpoint();
  const data = randomBytes(4 * 512 + 10);
  const done = upload(
    new BufferSource(data),
    { path: 'f', blksize: 512, windowsize: 4, timeoutMs: 200, deadAfterMs: 10_000, minDeadAfterMs: 10_000, maxFailovers: 0, cookieInterval: undefined },
    { next: (exclude) => Promise.resolve(exclude.size === 0 ? { host: '127.0.0.1', port: listen.socket.address().port } : undefined), unreachable: () => {} },
    { clock, logger: silentLogger },
  );
  const { packet: wrq, rinfo: client } = await listen.next();
  expect(wrq.opcode).toBe(TftpOpcode.Wrq);
  // The OACK comes 2 ms after the request.
  clock.advance(2);
  const oack = encodeTftpPacket({
    opcode: TftpOpcode.Oack,
    options: [
      ['blksize', '512'],
      ['windowsize', '4'],
    ],
  });
  tid.socket.send(oack, client.port, client.address);
  for (let n = 1; n <= 4; n++) expect((await tid.next()).packet).toMatchObject({ opcode: TftpOpcode.Data, block: n });
  // The ACK of the first window is lost: 20 ms on, well inside the 200 ms timeout, the client has resent.
  clock.advance(20);
  const resent = (await tid.next()).packet;
  expect(resent.opcode).toBe(TftpOpcode.Data);
  tid.socket.send(encodeTftpPacket({ opcode: TftpOpcode.Ack, block: 4 }), client.port, client.address);
  for (;;) {
    const { packet } = await tid.next();
    if (packet.opcode === TftpOpcode.Data && packet.block === 5) break;
  }
  tid.socket.send(encodeTftpPacket({ opcode: TftpOpcode.Ack, block: 5 }), client.port, client.address);
  await expect(done).resolves.toMatchObject({ bytes: data.length, failovers: 0 });
});
