/** The sans-I/O window receiver on a manual clock, alone and against the engine's sender over a lossy wire. */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import { WindowReceiver, type WindowReceiverInit } from '../../lib/tftp/engine/receiver.js';
import { WindowSender } from '../../lib/tftp/engine/sender.js';
import { wireBlock } from '../../protocols/tftp/packets.js';

const BLK = 8;
const full = new Uint8Array(BLK);
const short = new Uint8Array(3);

function receiver(init: Partial<WindowReceiverInit> = {}, mayAck: () => boolean = () => true) {
  const clock = new ManualClock();
  const acks: number[] = [];
  const got: number[] = [];
  const ev: string[] = [];
  const r = new WindowReceiver(
    { windowsize: 4, blksize: BLK, firstBlock: 1, timeoutMs: 100, maxRetries: 3, dallyMs: 200, ...init },
    {
      sendAck: (n) => acks.push(n),
      deliver: (n) => (got.push(n), true),
      mayAck,
      complete: (n) => ev.push(`complete ${n}`),
      gone: () => ev.push('gone'),
      closed: () => ev.push('closed'),
      oversize: (n, len) => ev.push(`oversize ${n} ${len}`),
    },
    { clock },
  );
  return { clock, r, acks, got, ev, taken: () => acks.splice(0) };
}

describe('window receiver', () => {
  it('ACKs each window’s end, and the last block only when told to finish', () => {
    const w = receiver();
    for (let n = 1; n <= 8; n++) w.r.data(n, full);
    expect(w.taken()).toEqual([4, 8]);
    w.r.data(9, short);
    expect(w.ev).toEqual(['complete 9']);
    expect(w.taken()).toEqual([]);
    w.r.finish();
    expect(w.taken()).toEqual([9]);
    expect(w.got).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('ACKs a gap once, the last block in order, and goes on when the sender goes back', () => {
    const w = receiver();
    w.r.data(1, full);
    w.r.data(3, full);
    w.r.data(4, full);
    expect(w.taken()).toEqual([1]);
    for (let n = 2; n <= 5; n++) w.r.data(n, full);
    expect(w.taken()).toEqual([5]);
    expect(w.got).toEqual([1, 2, 3, 4, 5]);
  });

  it('answers the last block again (its ACK was lost), ignores older duplicates', () => {
    const w = receiver({ windowsize: 1 });
    w.r.data(1, full);
    w.r.data(2, full);
    expect(w.taken()).toEqual([1, 2]);
    w.r.data(2, full);
    w.r.data(1, full);
    expect(w.taken()).toEqual([2]);
    expect(w.got).toEqual([1, 2]);
  });

  it('does not answer a block of the window coming again, only the block it last ACKed', () => {
    const w = receiver();
    for (let n = 1; n <= 6; n++) w.r.data(n, full);
    expect(w.taken()).toEqual([4]);
    // The sender went back to 4 (our ACK was late): 5 and 6 again are no news, and an ACK would end our window early.
    w.r.data(5, full);
    w.r.data(6, full);
    expect(w.taken()).toEqual([]);
    w.r.data(7, full);
    w.r.data(8, full);
    expect(w.taken()).toEqual([8]);
    // The block ACKed last, again: that ACK was lost.
    w.r.data(8, full);
    expect(w.taken()).toEqual([8]);
    expect(w.got).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('holds the window ACK while the owner cannot take more, and sends it on release', () => {
    let room = false;
    const w = receiver({}, () => room);
    for (let n = 1; n <= 4; n++) w.r.data(n, full);
    expect(w.taken()).toEqual([]);
    w.clock.advance(1_000);
    // Waiting for the owner is not the sender's silence: no resend, no give-up.
    expect(w.taken()).toEqual([]);
    expect(w.ev).toEqual([]);
    room = true;
    w.r.release();
    expect(w.taken()).toEqual([4]);
  });

  it('takes no block past the window while its ACK is held, nor from a sender that does not wait for it', () => {
    let may = false;
    const w = receiver({}, () => may);
    for (let n = 1; n <= 12; n++) w.r.data(n, full);
    expect(w.got).toEqual([1, 2, 3, 4]);
    expect(w.taken()).toEqual([]);
    may = true;
    w.r.release();
    expect(w.taken()).toEqual([4]);
    for (let n = 5; n <= 8; n++) w.r.data(n, full);
    expect(w.got).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(w.taken()).toEqual([8]);
    // Lock-step: one block past the one last ACKed, no more.
    const l = receiver({ windowsize: 1 }, () => false);
    for (let n = 1; n <= 5; n++) l.r.data(n, full);
    expect(l.got).toEqual([1]);
  });

  it('holds the ACK of a gap while the owner cannot take more: only release sends the sender back', () => {
    let room = true;
    const w = receiver({}, () => room);
    for (let n = 1; n <= 6; n++) w.r.data(n, full);
    expect(w.taken()).toEqual([4]);
    room = false;
    // Block 7 went missing mid-window.
    w.r.data(8, full);
    expect(w.taken()).toEqual([]);
    room = true;
    w.r.release();
    expect(w.taken()).toEqual([6]);
    w.r.data(7, full);
    w.r.data(8, full);
    expect(w.got).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('resends the last ACK on silence and gives up after maxRetries', () => {
    const w = receiver();
    for (let n = 1; n <= 4; n++) w.r.data(n, full);
    w.taken();
    w.clock.advance(350);
    expect(w.taken()).toEqual([4, 4, 4]);
    w.clock.advance(100);
    expect(w.ev).toEqual(['gone']);
    w.clock.advance(10_000);
    expect(w.taken()).toEqual([]);
    expect(w.clock.pending).toBe(0);
  });

  it('sends nothing on a timer before the first block', () => {
    const w = receiver();
    w.clock.advance(10_000);
    expect(w.taken()).toEqual([]);
    expect(w.r.started).toBe(false);
  });

  it('dallies after the final ACK: re-ACKs a repeated last block, then closes', () => {
    const w = receiver({ windowsize: 1 });
    w.r.data(1, short);
    w.r.finish();
    w.clock.advance(150);
    w.r.data(1, short);
    expect(w.taken()).toEqual([1, 1]);
    w.clock.advance(60);
    expect(w.ev).toEqual(['complete 1', 'closed']);
  });

  it('ends on a DATA larger than the block size', () => {
    const w = receiver();
    w.r.data(1, new Uint8Array(BLK + 1));
    expect(w.ev).toEqual(['oversize 1 9']);
    expect(w.got).toEqual([]);
  });

  it('follows the block number past 65535', () => {
    const w = receiver({ windowsize: 16, firstBlock: 65_530 });
    for (let n = 65_530; n < 65_530 + 16; n++) w.r.data(wireBlock(n), full);
    expect(w.taken()).toEqual([65_545]);
    expect(w.r.expected).toBe(65_546);
  });
});

describe('window sender and receiver over a lossy wire', () => {
  function rng(seed: number): () => number {
    let s = seed >>> 0;
    return () => {
      s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
      return s / 2 ** 32;
    };
  }

  for (const [windowsize, loss, dup, reorder] of [
    [1, 0.05, 0.05, 0],
    [8, 0.1, 0.05, 0.05],
    [32, 0.02, 0.02, 0.1],
  ] as const) {
    it(`delivers every block in order at window ${windowsize}, ${loss * 100} % loss, ${dup * 100} % duplicates, ${reorder * 100} % reordered`, () => {
      const clock = new ManualClock();
      const r = rng(windowsize * 7 + 1);
      const last = 3_000;
      const got: number[] = [];
      let done = false;
      let closed = false;
      const wire = (fn: () => void): void => {
        if (r() < loss) return;
        const copies = r() < dup ? 2 : 1;
        for (let i = 0; i < copies; i++) clock.setTimeout(fn, 1 + (r() < reorder ? 2 : 0) + i);
      };
      const receiver: WindowReceiver = new WindowReceiver(
        { windowsize, blksize: BLK, firstBlock: 1, timeoutMs: 300, maxRetries: 20, dallyMs: 600 },
        {
          sendAck: (n) => wire(() => sender.ack(wireBlock(n))),
          deliver: (n) => (got.push(n), true),
          complete: () => receiver.finish(),
          gone: () => {},
          closed: () => (closed = true),
        },
        { clock },
      );
      const sender: WindowSender = new WindowSender(
        { windowsize, firstBlock: 1, timeoutMs: 200, minTimeoutMs: 5, giveUpMs: 5_000 },
        {
          send: (n) => (wire(() => receiver.data(wireBlock(n), n === last ? short : full)), true),
          lastBlock: () => last,
          done: () => (done = true),
          gone: () => {},
        },
        { clock },
      );
      sender.start();
      for (let t = 0; t < 600_000 && !(done && closed); t += 10) clock.advance(10);
      expect(done).toBe(true);
      expect(closed).toBe(true);
      expect(got.length).toBe(last);
      expect(got.every((n, i) => n === i + 1)).toBe(true);
    });
  }
});

describe('window sender and receivers on hosts that pause', () => {
  function rng(seed: number): () => number {
    let s = seed >>> 0;
    return () => {
      s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
      return s / 2 ** 32;
    };
  }

  /** A process on a loaded host: it runs for up to `runMs`, then is paused for up to `pauseMs`; what reaches it meanwhile waits. */
  function host(clock: ManualClock, r: () => number, runMs: number, pauseMs: number): (fn: () => void) => void {
    let paused = false;
    const waiting: Array<() => void> = [];
    const flip = (): void => {
      paused = !paused;
      if (!paused) for (const fn of waiting.splice(0)) fn();
      clock.setTimeout(flip, r() * (paused ? pauseMs : runMs));
    };
    clock.setTimeout(flip, r() * runMs);
    return (fn) => (paused ? waiting.push(fn) : fn());
  }

  // Pauses longer than the sender's retransmission timeout made it resend, and the answers to those
  // resends (our receiver's repeated ACKs, atftp's extra ACKs) sent it back again and again: a third
  // to two thirds of all DATA went twice or more.
  for (const client of ['ours', 'atftp'] as const) {
    for (const windowsize of [4, 16]) {
      it(`resends under 5 % of the blocks to ${client === 'ours' ? 'our receiver' : 'an atftp-like receiver'} at window ${windowsize}`, () => {
        const clock = new ManualClock();
        const r = rng(1);
        const last = 4_000;
        const oneWayMs = 0.05;
        const atSender = host(clock, r, 4, 8);
        const atReceiver = host(clock, r, 4, 8);
        let sends = 0;
        let resends = 0;
        let done = false;
        const got: number[] = [];
        const ack = (n: number): void => void clock.setTimeout(() => atSender(() => sender.ack(wireBlock(n))), oneWayMs);
        const ours: WindowReceiver = new WindowReceiver(
          { windowsize, blksize: BLK, firstBlock: 1, timeoutMs: 300, maxRetries: 20, dallyMs: 600 },
          { sendAck: ack, deliver: (n) => (got.push(n), true), complete: () => ours.finish(), gone: () => {}, closed: () => {} },
          { clock },
        );
        // atftp 0.8 (tftp_file.c): windows counted from its last ACK; at a block out of order (a repeat too)
        // one extra ACK of the last block in order, then nothing until the next block in order.
        let have = 0;
        let inWindow = 0;
        let extraSent = false;
        const atftp = (n: number): void => {
          if (n !== have + 1) {
            if (!extraSent) {
              extraSent = true;
              inWindow = 0;
              ack(have);
            }
            return;
          }
          extraSent = false;
          have = n;
          got.push(n);
          if (++inWindow >= windowsize || n === last) {
            inWindow = 0;
            ack(n);
          }
        };
        const sender: WindowSender = new WindowSender(
          { windowsize, firstBlock: 1, timeoutMs: 1_000, minTimeoutMs: 5, giveUpMs: 60_000 },
          {
            send: (n, resend) => {
              sends++;
              if (resend) resends++;
              const data = (): void => (client === 'ours' ? ours.data(wireBlock(n), n === last ? short : full) : atftp(n));
              clock.setTimeout(() => atReceiver(data), oneWayMs);
              return true;
            },
            lastBlock: () => last,
            done: () => (done = true),
            gone: () => {},
          },
          { clock, defer: (fn) => clock.setTimeout(() => atSender(fn), 0.01) },
        );
        sender.start();
        for (let t = 0; t < 60_000 && !done; t += oneWayMs) clock.advance(oneWayMs);
        expect(done).toBe(true);
        expect(got.length).toBe(last);
        expect(got.every((n, i) => n === i + 1)).toBe(true);
        expect(sends).toBe(last + resends);
        expect(resends / last).toBeLessThan(0.05);
      });
    }
  }
});
