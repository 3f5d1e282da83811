/**
 * A TFTP PE that leaves the pool (stop()) tells each client with cookies
 * where to resume, at once: the client does not wait for its dead-PE
 * timeout, does not report the PE unreachable, and the file arrives whole.
 * In this process, on loopback, with a registrar and three PEs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { decodeAsapMessage, encodeAsapMessage } from '../../protocols/asap/codec.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { decodeTftpPacket } from '../../protocols/tftp/codec.js';
import { TftpOpcode } from '../../protocols/tftp/types.js';
import { createPoolUser } from '../../lib/pool-user/index.js';
import { createRegistrar, type Registrar } from '../../lib/registrar/index.js';
import { createTftpClient, type FailoverInfo, type TransferProgress } from '../../lib/tftp/client/index.js';
import { LEAVING_ERROR_PREFIX, MOVED_ERROR_TEXT, RESUME_ACK_OPTION, isAsapDatagram } from '../../lib/tftp/contract.js';
import { createTftpPoolElement, type TftpPoolElement, type TransferResult } from '../../lib/tftp/server/index.js';
import { RawPeer } from './server-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'tftp-leave-'));
const root = join(dir, 'root');
const SIZE = 6_000_000;
let data: Buffer;
let registrar: Registrar;
let url: string;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

beforeAll(async () => {
  mkdirSync(root);
  data = randomBytes(SIZE);
  writeFileSync(join(root, 'f.bin'), data);
  registrar = createRegistrar({ asap: ['tcp://127.0.0.1:0'], announce: false });
  await registrar.start();
  url = registrar.addresses[0]!.href;
});

afterAll(async () => {
  await registrar.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Transfers in this thread, and on two worker threads. */
const MODES = [0, 2];

async function startPes(n: number, workers: number, opts: { writable?: boolean; handle?: string } = {}): Promise<TftpPoolElement[]> {
  const pes: TftpPoolElement[] = [];
  for (let i = 0; i < n; i++) {
    const pe = createTftpPoolElement({
      root,
      port: 0,
      handle: opts.handle ?? 'files',
      registrars: [url],
      secret: 'leave test secret',
      workers,
      writable: opts.writable ?? false,
    });
    await pe.start();
    cleanups.push(() => pe.stop());
    pes.push(pe);
  }
  return pes;
}

describe('a TFTP PE leaving the pool', () => {
  it.each(MODES)(
    'sends its clients on at once with the cookie and a business card: no dead-PE wait, no unreachable report, byte-identical (workers: %i)',
    async (workers) => {
      const pes = await startPes(3, workers);
      const pu = createPoolUser({ registrars: [url], discovery: false });
      cleanups.push(() => pu.close());
      const reported = vi.spyOn(pu, 'reportUnreachable');
      const resolved = vi.spyOn(pu, 'resolve');
      // A dead-PE timeout far beyond the test: only the PE's notice can move the client in time.
      const c = createTftpClient({ pu, deadAfterMs: 60_000, timeoutMs: 30_000, windowsize: 4, blksize: 512 });
      cleanups.push(() => c.close());
      let stopping: Promise<void> | undefined;
      let left: TftpPoolElement | undefined;
      const ends: TransferResult[] = [];
      for (const pe of pes) pe.server.on('transfer-end', (_t, r) => ends.push(r));
      const failovers: FailoverInfo[] = [];
      const onProgress = (p: TransferProgress): void => {
        if (stopping || !p.pe || p.bytes < SIZE / 3) return;
        left = pes.find((x) => x.identifier === p.pe!.identifier)!;
        stopping = left.stop();
      };
      const out = join(dir, 'out-1.bin');
      const r = await c.get('files', 'f.bin', out, { onProgress, progressIntervalMs: 5, onFailover: (f) => failovers.push(f) });
      await stopping;
      expect(left).toBeDefined();
      expect(readFileSync(out).equals(data)).toBe(true);
      expect(r.sha256).toBe(sha(data));
      expect(failovers).toHaveLength(1);
      expect(failovers[0]).toMatchObject({ from: { identifier: left!.identifier }, cookieEchoed: true });
      expect(failovers[0]!.reason).toMatch(new RegExp(LEAVING_ERROR_PREFIX));
      // Make-before-break: the leaving PE sent on until the next one was ready.
      expect(failovers[0]!.reason).toMatch(/make-before-break/);
      // The stall is the notice's round trips, not the 60 s dead-PE timeout.
      expect(failovers[0]!.stallMs).toBeLessThan(5_000);
      const others = pes.filter((p) => p !== left).map((p) => p.identifier);
      expect(others).toContain(failovers[0]!.to.identifier);
      // Resumed where the client was (its first ACK to the next PE named the last block it held): no block came twice.
      expect(r.servedBy[1]!.fromBlock).toBe(r.servedBy[0]!.toBlock + 1);
      expect(reported).not.toHaveBeenCalled();
      // The next PE came from the leaving PE's business card, not from another resolution.
      expect(resolved).toHaveBeenCalledTimes(1);
      expect(ends.map((e) => e.reason)).toContain('moved');
    },
  );

  it.each(MODES)(
    'sends an upload on at once with a cookie naming what it has synced: the next PE takes the temporary file over, byte-identical (workers: %i)',
    async (workers) => {
      const pes = await startPes(3, workers, { writable: true, handle: `uploads-${workers}` });
      const pu = createPoolUser({ registrars: [url], discovery: false });
      cleanups.push(() => pu.close());
      const reported = vi.spyOn(pu, 'reportUnreachable');
      // A dead-PE timeout far beyond the test: only the PE's notice can move the client in time.
      const c = createTftpClient({ pu, deadAfterMs: 60_000, timeoutMs: 30_000, windowsize: 4, blksize: 512 });
      cleanups.push(() => c.close());
      let stopping: Promise<void> | undefined;
      let left: TftpPoolElement | undefined;
      let bytesAtStop = 0;
      const failovers: FailoverInfo[] = [];
      const onProgress = (p: TransferProgress): void => {
        if (stopping || !p.pe || p.bytes < SIZE / 3) return;
        left = pes.find((x) => x.identifier === p.pe!.identifier)!;
        bytesAtStop = p.bytes;
        stopping = left.stop();
      };
      const name = `up-${workers}.bin`;
      const r = await c.put(`uploads-${workers}`, name, data, { onProgress, progressIntervalMs: 5, onFailover: (f) => failovers.push(f) });
      await stopping;
      expect(left).toBeDefined();
      expect(readFileSync(join(root, name)).equals(data)).toBe(true);
      expect(r).toMatchObject({ bytes: SIZE, failovers: 1, restarts: 0 });
      expect(failovers[0]).toMatchObject({ from: { identifier: left!.identifier }, cookieEchoed: true });
      expect(failovers[0]!.reason).toMatch(new RegExp(LEAVING_ERROR_PREFIX));
      expect(failovers[0]!.stallMs).toBeLessThan(5_000);
      // The leaving cookie names what the PE had received, not the last 4 MiB mark.
      expect((failovers[0]!.atBlock - 1) * 512).toBeGreaterThanOrEqual(bytesAtStop);
      expect(reported).not.toHaveBeenCalled();
      expect(readdirSync(root).filter((n) => n.startsWith('.'))).toEqual([]);
    },
  );

  it.each(MODES)(
    'make-before-break: goes on sending after the card until the client says it moved; the next PE starts after the block the client ACKs (workers: %i)',
    async (workers) => {
      const [leaving, next] = await startPes(2, workers, { handle: `mbb-${workers}` });
      const peer = await RawPeer.open();
      cleanups.push(async () => peer.close());
      const ends: TransferResult[] = [];
      leaving!.server.on('transfer-end', (_t, r) => ends.push(r));
      peer.sendPacket({ opcode: TftpOpcode.Rrq, filename: 'f.bin', mode: 'octet', options: [['rserpool-cookie', '0']] }, leaving!.address.port);
      const oack = await peer.nextTftp();
      expect(oack.packet.opcode).toBe(TftpOpcode.Oack);
      const tid = oack.port;
      let cookie: Uint8Array | undefined;
      let card = false;
      const asap = (b: Buffer): void => {
        const m = decodeAsapMessage(b);
        if (m.type === AsapMessageType.Cookie) cookie = m.cookie;
        if (m.type === AsapMessageType.BusinessCard) card = true;
      };
      // Lock-step: ACK each block; stop the PE after a few, then keep on until its card came and blocks still follow.
      let held = 0;
      let afterCard = 0;
      let stopping: Promise<void> | undefined;
      peer.ack(0, tid);
      while (afterCard < 3) {
        const { packet: p } = await peer.nextTftp(10_000, asap);
        expect(p.opcode, 'no leaving ERROR while the client has not moved').toBe(TftpOpcode.Data);
        if (p.opcode !== TftpOpcode.Data || p.block !== ((held + 1) & 0xffff)) continue;
        held++;
        if (card) afterCard++;
        if (held === 5) stopping = leaving!.stop();
        peer.ack(held, tid);
      }
      expect(cookie).toBeDefined();
      // The cookie to the next PE: its OACK offers to start after a later ACK.
      peer.send(encodeAsapMessage({ type: AsapMessageType.CookieEcho, cookie: cookie! }), next!.address.port);
      let resumed = await peer.nextTftp(10_000, () => {});
      // The leaving PE's resend of the block not yet ACKed may come first.
      while (resumed.port === tid) resumed = await peer.nextTftp(10_000, () => {});
      expect(resumed.packet).toMatchObject({ opcode: TftpOpcode.Oack, options: expect.arrayContaining([[RESUME_ACK_OPTION, '1']]) });
      // Moved: the leaving PE is told, the next one gets the ACK of the last block held.
      peer.sendPacket({ opcode: TftpOpcode.Error, code: 0, message: MOVED_ERROR_TEXT }, tid);
      peer.ack(held, resumed.port);
      let first: ReturnType<typeof decodeTftpPacket> | undefined;
      for (;;) {
        const d = await peer.next();
        if (d.port !== resumed.port || isAsapDatagram(d.bytes)) continue;
        first = decodeTftpPacket(d.bytes);
        break;
      }
      expect(first).toMatchObject({ opcode: TftpOpcode.Data, block: held + 1 });
      await stopping;
      expect(ends.map((e) => e.reason)).toEqual(['moved']);
    },
  );

  it('make-before-break: a client that does not move after the card still gets the leaving ERROR, and the PE stops', async () => {
    const [leaving] = await startPes(2, 0, { handle: 'mbb-ignored' });
    const peer = await RawPeer.open();
    cleanups.push(async () => peer.close());
    peer.sendPacket({ opcode: TftpOpcode.Rrq, filename: 'f.bin', mode: 'octet', options: [['rserpool-cookie', '0']] }, leaving!.address.port);
    const oack = await peer.nextTftp();
    const tid = oack.port;
    let held = 0;
    let card = false;
    let afterCard = 0;
    let stopping: Promise<void> | undefined;
    peer.ack(0, tid);
    for (;;) {
      const { packet: p } = await peer.nextTftp(10_000, (b) => {
        if (decodeAsapMessage(b).type === AsapMessageType.BusinessCard) card = true;
      });
      if (p.opcode === TftpOpcode.Error) {
        expect(p.message.startsWith(LEAVING_ERROR_PREFIX)).toBe(true);
        break;
      }
      if (p.opcode !== TftpOpcode.Data || p.block !== ((held + 1) & 0xffff)) continue;
      held++;
      if (card) afterCard++;
      if (held === 5) stopping = leaving!.stop();
      // A few blocks after the card this client stops ACKing, and never moves (it knows nothing of cards).
      if (afterCard < 3) peer.ack(held, tid);
    }
    // The PE served on after the card, until the overlap ran out.
    expect(afterCard).toBe(3);
    expect(stopping).toBeDefined();
    await stopping;
  });

  it.each(MODES)(
    'answers requests that reach it while it drains a plain client with the leaving ERROR, and lets that client finish (workers: %i)',
    async (workers) => {
      const [pe] = await startPes(1, workers);
      const port = pe!.address.port;
      // A plain client: no cookie option, lock-step; it cannot move, so the PE waits for it.
      const plain = await RawPeer.open();
      cleanups.push(async () => plain.socket.close());
      plain.sendPacket({ opcode: TftpOpcode.Rrq, filename: 'f.bin', mode: 'octet', options: [['blksize', '1468']] }, port);
      const oack = await plain.next();
      expect(decodeTftpPacket(oack.bytes).opcode).toBe(TftpOpcode.Oack);
      plain.ack(0, oack.port);
      const first = await plain.next();
      expect(decodeTftpPacket(first.bytes)).toMatchObject({ opcode: TftpOpcode.Data, block: 1 });
      const stopped = pe!.stop({ drainMs: 30_000 });
      // A newcomer is sent on with the ERROR, no larger than its request.
      const late = await RawPeer.open();
      cleanups.push(async () => late.socket.close());
      const rrq = { opcode: TftpOpcode.Rrq, filename: 'f.bin', mode: 'octet', options: [[`rserpool-cookie`, '0']] } as const;
      let answer: ReturnType<typeof decodeTftpPacket> | undefined;
      // The PE deregisters before it turns requests away: ask until the answer is the leaving one.
      for (let i = 0; i < 200 && answer?.opcode !== TftpOpcode.Error; i++) {
        late.sendPacket({ ...rrq, options: [...rrq.options] }, port);
        const d = await late.next();
        answer = decodeTftpPacket(d.bytes);
        if (answer.opcode !== TftpOpcode.Error) late.sendPacket({ opcode: TftpOpcode.Error, code: 0, message: 'not now' }, d.port);
      }
      expect(answer).toMatchObject({ opcode: TftpOpcode.Error, code: 0 });
      expect((answer as { message: string }).message.startsWith(LEAVING_ERROR_PREFIX)).toBe(true);
      // The plain client still gets every block.
      let block = 1;
      let got = first.bytes.length - 4;
      for (;;) {
        plain.ack(block, first.port);
        const d = await plain.next();
        const p = decodeTftpPacket(d.bytes);
        if (p.opcode !== TftpOpcode.Data || p.block !== ((block + 1) & 0xffff)) continue;
        block++;
        got += p.data.length;
        if (p.data.length < 1468) break;
      }
      plain.ack(block, first.port);
      expect(got).toBe(SIZE);
      await stopped;
    },
  );
});

describe('the TFTP client noticing a dead PE', () => {
  it.each(MODES)('follows the measured round trip: a PE that falls silent costs about the floor, not the limit (workers: %i)', async (workers) => {
    const pes = await startPes(2, workers);
    // A 10 s limit with a 100 ms floor: on loopback the wait comes down to the floor.
    const c = createTftpClient({ registrars: [url], deadAfterMs: 10_000, minDeadAfterMs: 100, windowsize: 4, blksize: 512 });
    cleanups.push(() => c.close());
    let silenced = false;
    const failovers: FailoverInfo[] = [];
    const onProgress = (p: TransferProgress): void => {
      if (silenced || !p.pe || p.bytes < SIZE / 3) return;
      silenced = true;
      // Silent, as after kill -9 of the process: no leaving notice.
      void pes.find((x) => x.identifier === p.pe!.identifier)!.server.close({ leave: false });
    };
    const out = join(dir, 'out-2.bin');
    const r = await c.get('files', 'f.bin', out, { onProgress, progressIntervalMs: 5, onFailover: (f) => failovers.push(f) });
    expect(r.sha256).toBe(sha(data));
    expect(failovers).toHaveLength(1);
    expect(failovers[0]!.reason).toMatch(/did not answer for \d+ ms/);
    expect(failovers[0]!.stallMs).toBeGreaterThanOrEqual(100);
    expect(failovers[0]!.stallMs).toBeLessThan(2_000);
  });
});
