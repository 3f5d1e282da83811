/**
 * The sans-I/O window sender on a manual clock, against a simulated receiver
 * that behaves as RFC 7440 receivers do (atftp, tftp-hpa, curl, ours): an
 * ACK at each window's end, and on a gap the ACK of the last block in order.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import { WindowSender, type WindowSenderInit } from '../../lib/tftp/engine/sender.js';
import { wireBlock } from '../../protocols/tftp/packets.js';

interface NetOptions {
  /** One-way delay, ms. */
  delayMs?: number;
  /** Decides per DATA/ACK whether it is lost / duplicated / delayed extra (reordering). */
  loseData?: (n: number, seq: number) => boolean;
  loseAck?: (block: number, seq: number) => boolean;
  duplicateData?: (n: number, seq: number) => boolean;
  extraDelay?: (n: number, seq: number) => number;
  /** The receiver stops answering after this block. */
  vanishAfter?: number;
}

/** A sender, a receiver and a lossy wire between them; all on one manual clock. */
function world(init: Partial<WindowSenderInit> & { lastBlock: number }, net: NetOptions = {}) {
  const clock = new ManualClock();
  const delay = net.delayMs ?? 1;
  const windowsize = init.windowsize ?? 1;
  const sends: Array<{ n: number; resend: boolean; at: number }> = [];
  const delivered: number[] = [];
  let expected = 1;
  let inWindow = 0;
  let dataSeq = 0;
  let ackSeq = 0;
  let done = false;
  let gone = false;

  const sendAck = (block: number): void => {
    const seq = ackSeq++;
    if (net.vanishAfter !== undefined && expected - 1 > net.vanishAfter) return;
    if (net.loseAck?.(block, seq)) return;
    clock.setTimeout(() => sender.ack(wireBlock(block)), delay);
  };
  // The receiver: in-order delivery, ACK at window end, the ACK of what it has on a gap.
  const receive = (n: number, wire: number): void => {
    if (net.vanishAfter !== undefined && expected - 1 >= net.vanishAfter) return;
    if (wire === wireBlock(expected)) {
      delivered.push(n);
      expected++;
      inWindow++;
      if (inWindow === windowsize || n === init.lastBlock) {
        inWindow = 0;
        sendAck(n);
      }
    } else {
      // A gap or an old block again (its ACK was lost): ACK what it has.
      inWindow = 0;
      sendAck(expected - 1);
    }
  };

  // The closures above run only once the clock moves, after this line.
  const sender: WindowSender = new WindowSender(
    { windowsize, firstBlock: 1, timeoutMs: init.timeoutMs ?? 1_000, minTimeoutMs: init.minTimeoutMs ?? 5, giveUpMs: init.giveUpMs ?? 6_000 },
    {
      send: (n, resend) => {
        sends.push({ n, resend, at: clock.now() });
        const seq = dataSeq++;
        if (net.loseData?.(n, seq)) return true;
        const copies = net.duplicateData?.(n, seq) ? 2 : 1;
        for (let i = 0; i < copies; i++) clock.setTimeout(() => receive(n, wireBlock(n)), delay + (net.extraDelay?.(n, seq) ?? 0) + i);
        return true;
      },
      lastBlock: () => init.lastBlock,
      done: () => (done = true),
      gone: () => (gone = true),
    },
    { clock },
  );
  return {
    clock,
    sender,
    sends,
    delivered,
    get done() {
      return done;
    },
    get gone() {
      return gone;
    },
    /** Runs the clock until the sender ends or `maxMs` passes. */
    run(maxMs = 600_000) {
      sender.start();
      for (let t = 0; t < maxMs && !done && !gone; t += 10) clock.advance(10);
    },
  };
}

function inOrder(delivered: number[], last: number): boolean {
  return delivered.length === last && delivered.every((n, i) => n === i + 1);
}

/** A seeded generator so a failure repeats. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('window sender - delivery', () => {
  it('sends a file lock-step and windowed without one retransmission on a clean path', () => {
    for (const windowsize of [1, 8, 64]) {
      const w = world({ windowsize, lastBlock: 1_000 });
      w.run();
      expect(w.done).toBe(true);
      expect(inOrder(w.delivered, 1_000)).toBe(true);
      expect(w.sends.filter((s) => s.resend)).toEqual([]);
      expect(w.sends.length).toBe(1_000);
    }
  });

  it('gets every block through 10 % loss of DATA and ACKs, lock-step and windowed', () => {
    for (const windowsize of [1, 16]) {
      const r = rng(windowsize);
      const w = world({ windowsize, lastBlock: 2_000 }, { loseData: () => r() < 0.1, loseAck: () => r() < 0.1 });
      w.run();
      expect(w.done).toBe(true);
      expect(inOrder(w.delivered, 2_000)).toBe(true);
    }
  });

  it('copes with duplicated and reordered DATA', () => {
    const r = rng(7);
    const w = world({ windowsize: 8, lastBlock: 1_500 }, { duplicateData: () => r() < 0.2, extraDelay: () => (r() < 0.1 ? 3 : 0) });
    w.run();
    expect(w.done).toBe(true);
    expect(inOrder(w.delivered, 1_500)).toBe(true);
  });

  it('rolls the block number over past 65535 and finishes at the right absolute block', () => {
    const last = 65_536 + 300;
    const w = world({ windowsize: 32, lastBlock: last }, { delayMs: 0.01 });
    w.run();
    expect(w.done).toBe(true);
    expect(inOrder(w.delivered, last)).toBe(true);
    expect(w.sender.acked).toBe(last);
  });
});

describe('window sender - ACK handling', () => {
  function manual(windowsize: number, lastBlock = 100) {
    const clock = new ManualClock();
    // Bursts yield to the "event loop": deferred work runs only when the test says.
    const deferred: Array<() => void> = [];
    const sends: Array<{ n: number; resend: boolean }> = [];
    let done = false;
    let gone = false;
    const sender = new WindowSender(
      { windowsize, firstBlock: 1, timeoutMs: 1_000, minTimeoutMs: 5, giveUpMs: 6_000 },
      { send: (n, resend) => (sends.push({ n, resend }), true), lastBlock: () => lastBlock, done: () => (done = true), gone: () => (gone = true) },
      { clock, defer: (fn) => deferred.push(fn) },
    );
    return {
      clock,
      sender,
      sends,
      /** What went out, after letting every deferred burst run. */
      taken: () => {
        while (deferred.length > 0) deferred.splice(0).forEach((fn) => fn());
        return sends.splice(0).map((s) => s.n);
      },
      get done() {
        return done;
      },
      get gone() {
        return gone;
      },
    };
  }
  const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);

  it('ignores a duplicate ACK lock-step (no Sorcerer’s Apprentice)', () => {
    const m = manual(1);
    m.sender.start();
    m.clock.advance(2);
    m.sender.ack(1);
    expect(m.taken()).toEqual([1, 2]);
    m.sender.ack(1);
    m.sender.ack(1);
    expect(m.taken()).toEqual([]);
  });

  it('resends the window once for a burst of duplicate ACKs', () => {
    const m = manual(8);
    m.sender.start();
    m.clock.advance(2);
    m.sender.ack(8);
    expect(m.taken()).toEqual(range(1, 16));
    for (let i = 0; i < 5; i++) m.sender.ack(8);
    expect(m.taken()).toEqual(range(9, 16));
  });

  it('goes back to the block after an ACK inside the window', () => {
    const m = manual(8);
    m.sender.start();
    m.clock.advance(2);
    m.sender.ack(8);
    m.taken();
    m.sender.ack(11);
    expect(m.taken()).toEqual(range(12, 19));
  });

  it('after a duplicate ACK rewound the window, takes the late ACK for the window sent before the rewind', () => {
    const m = manual(8);
    m.sender.start();
    expect(m.taken()).toEqual(range(1, 8));
    // atftp saw block 1 late: a duplicate ACK 0 rewinds (a loss: the burst halves, the rest of the window waits a turn) ...
    m.sender.ack(0);
    expect(m.sends.splice(0).map((s) => s.n)).toEqual(range(1, 4));
    // ... then, in the same turn, the ACK of the whole first window. atftp never repeats it: it must count.
    m.sender.ack(8);
    expect(m.sender.acked).toBe(8);
    expect(m.taken()).toEqual(range(9, 16));
  });

  it('takes one duplicate ACK of a block it sent again as the answer to that resend, not a loss', () => {
    const m = manual(8);
    m.sender.start();
    expect(m.taken()).toEqual(range(1, 8));
    // The ACK is late: the first timeout probes with block 8 ...
    m.clock.advance(1_000);
    expect(m.taken()).toEqual([8]);
    // ... and the receiver, which had it, ACKs it twice: the late ACK and its answer to the probe.
    m.sender.ack(8);
    expect(m.taken()).toEqual(range(9, 16));
    m.sender.ack(8);
    expect(m.taken()).toEqual([]);
    // Another duplicate is a loss (block 9): the window goes again.
    m.sender.ack(8);
    expect(m.taken()).toEqual(range(9, 16));
  });

  it('takes the answer to a probe, one round trip after it, as excused when the late ACK it repeats came first', () => {
    const m = manual(8);
    m.sender.start();
    expect(m.taken()).toEqual(range(1, 8));
    // 40 ms round trips: the timeout is 120 ms.
    m.clock.advance(40);
    m.sender.ack(8);
    expect(m.taken()).toEqual(range(9, 16));
    m.clock.advance(120);
    expect(m.taken()).toEqual([16]);
    // ACK 16 was late, not lost: it comes 10 ms after the probe, the probe's answer a round trip after it.
    m.clock.advance(10);
    m.sender.ack(16);
    expect(m.taken()).toEqual(range(17, 24));
    m.clock.advance(30);
    m.sender.ack(16);
    expect(m.taken()).toEqual([]);
    // Block 17 was lost: the receiver's gap ACK a round trip after the window.
    m.clock.advance(10);
    m.sender.ack(16);
    expect(m.taken()).toEqual(range(17, 24));
  });

  it('takes a duplicate ACK as the next window’s loss when the answer to a probe was its only ACK (the first one lost)', () => {
    const m = manual(8);
    m.sender.start();
    m.clock.advance(40);
    m.sender.ack(8);
    expect(m.taken()).toEqual(range(1, 16));
    // ACK 16 is lost: the first timeout probes with 16, and the receiver's answer is the only ACK 16.
    m.clock.advance(120);
    expect(m.taken()).toEqual([16]);
    m.clock.advance(40);
    m.sender.ack(16);
    expect(m.taken()).toEqual(range(17, 24));
    // Block 17 is lost: the gap ACK 16 a round trip later is no answer to the probe, and the window goes again at once.
    m.clock.advance(40);
    m.sender.ack(16);
    expect(m.taken()).toEqual(range(17, 24));
  });

  it('takes a duplicate ACK as the next window’s loss when the answer to a probe was lost too and a timeout’s resend was answered once', () => {
    const m = manual(8);
    m.sender.start();
    m.clock.advance(40);
    m.sender.ack(8);
    expect(m.taken()).toEqual(range(1, 16));
    // ACK 16 and the answer to the probe of 16 are both lost: the second timeout sends the window again.
    m.clock.advance(120);
    expect(m.taken()).toEqual([16]);
    m.clock.advance(240);
    expect(m.taken()).toEqual(range(9, 16));
    // The receiver had 9-16 and ACKs 16 once, at its repeat.
    m.clock.advance(40);
    m.sender.ack(16);
    expect(m.taken()).toEqual(range(17, 24));
    // Block 17 is lost: its gap ACK rewinds at once, not at the next timeout.
    m.clock.advance(40);
    m.sender.ack(16);
    expect(m.taken()).toEqual(range(17, 24));
  });

  it('soon after a rewind takes an ACK inside the window as progress, not a reason to send the window a third time', () => {
    const m = manual(8);
    m.sender.start();
    m.clock.advance(2);
    m.sender.ack(8);
    expect(m.taken()).toEqual(range(1, 16));
    // Block 9 looks lost: a duplicate ACK sends the window again ...
    m.sender.ack(8);
    expect(m.taken()).toEqual(range(9, 16));
    // ... but 9-11 came after all, and atftp ACKs 11 at the first block it sees twice: 12-16 are on their way.
    m.sender.ack(11);
    expect(m.sender.acked).toBe(11);
    expect(m.taken()).toEqual(range(17, 19));
    // Once the rewind's answers are in (two round trips), an ACK inside the window is a loss again.
    m.clock.advance(5);
    m.sender.ack(13);
    expect(m.taken()).toEqual(range(14, 21));
  });

  it('acts on a duplicate ACK that came during a rewind’s hold once the hold ends, not at a backed-off timeout', () => {
    const m = manual(16);
    m.sender.start();
    expect(m.taken()).toEqual(range(1, 16));
    // A loaded host: 40 ms round trips, so the hold is 80 ms and the timeout over 100 ms.
    m.clock.advance(40);
    m.sender.ack(16);
    expect(m.taken()).toEqual(range(17, 32));
    m.clock.advance(1);
    m.sender.ack(20);
    expect(m.taken()).toEqual(range(21, 36));
    // Block 21 is lost again: the receiver repeats ACK 20 (its gap ACK, then its resends on silence).
    m.clock.advance(1);
    m.sender.ack(20);
    expect(m.taken()).toEqual([]);
    let waited = 0;
    let sent: number[] = [];
    while (!sent.includes(21) && waited < 400) {
      m.clock.advance(1);
      waited++;
      if (waited === 50) m.sender.ack(20);
      sent = m.taken();
    }
    expect(sent.slice(0, 2)).toEqual([21, 22]);
    expect(waited).toBeLessThanOrEqual(80);
  });

  it('after a rewind for a gap, takes a lone duplicate ACK of the resent window’s end as the next window’s loss', () => {
    const m = manual(8);
    m.sender.start();
    m.clock.advance(2);
    m.sender.ack(8);
    expect(m.taken()).toEqual(range(1, 16));
    // Block 9 is lost: the receiver's gap ACK sends the window again, and 9-16 come in order (it dropped 10-16 before).
    m.sender.ack(8);
    expect(m.taken()).toEqual(range(9, 16));
    m.clock.advance(2);
    m.sender.ack(16);
    expect(m.taken()).toEqual(range(17, 24));
    // Block 17 is lost: the receiver ACKs 16 once, at 18, and waits. It had 16 once: this is no answer to a resend.
    m.clock.advance(2);
    m.sender.ack(16);
    expect(m.taken()).toEqual(range(17, 24));
  });

  it('soon after a rewind, when the resent block after an ACK inside the window was lost again, resends from there at the first timeout, not a probe of the tail', () => {
    const m = manual(16);
    m.sender.start();
    expect(m.taken()).toEqual(range(1, 16));
    m.clock.advance(40);
    m.sender.ack(16);
    expect(m.taken()).toEqual(range(17, 32));
    // Block 21 is lost: the window goes again from there.
    m.clock.advance(40);
    m.sender.ack(20);
    expect(m.taken()).toEqual(range(21, 36));
    // The resent 26 is lost too: the receiver ACKs 25 (inside the window, within the rewind's hold), once, and waits for 26.
    m.clock.advance(40);
    m.sender.ack(25);
    expect(m.sender.acked).toBe(25);
    expect(m.taken()).toEqual(range(37, 41));
    const rto = m.sender.rto;
    const sent: number[] = [];
    let waited = 0;
    while (!sent.includes(26) && waited < 1_000) {
      m.clock.advance(1);
      waited++;
      sent.push(...m.taken());
    }
    // A receiver missing 26 takes no later block: the window's last one alone would be lost time.
    expect(sent[0]).toBe(26);
    expect(waited).toBeLessThanOrEqual(Math.ceil(rto));
  });

  it('drops an ACK for a block never sent and one from before a rollover', () => {
    const m = manual(4, 70_000);
    m.sender.start();
    m.sender.ack(100);
    expect(m.sender.acked).toBe(0);
    expect(m.taken()).toEqual([1, 2, 3, 4]);
    m.sender.ack(wireBlock(70_000 - 65_536));
    expect(m.sender.acked).toBe(0);
  });

  it('retransmits after the measured round trip, not the full timeout, and backs off', () => {
    const m = manual(1);
    m.sender.start();
    for (let n = 1; n <= 20; n++) {
      m.clock.advance(2);
      m.sender.ack(n);
    }
    m.taken();
    // Round trips of 2 ms: the retransmission comes long before the 1 s timeout.
    m.clock.advance(6);
    expect(m.sends).toEqual([{ n: 21, resend: true }]);
    expect(m.sender.rto).toBeLessThan(20);
    m.taken();
    // Backoff: the next gap is longer than the first.
    let waited = 0;
    while (m.sends.length === 0 && waited < 1_000) {
      m.clock.advance(1);
      waited++;
    }
    expect(waited).toBeGreaterThan(5);
    expect(m.sends.map((s) => s.n)).toEqual([21]);
  });

  it('probes with the window’s last block on the first timeout, then sends the whole window', () => {
    const m = manual(8);
    m.sender.start();
    m.taken();
    m.clock.advance(1_000);
    expect(m.taken()).toEqual([8]);
    m.clock.advance(1_000);
    expect(m.taken()).toEqual(range(1, 8));
  });

  it('starts with a round trip timed before (OACK and ACK 0): a window whose tail is lost is probed after the measured timeout, not the whole one', () => {
    const m = manual(16);
    m.sender.start(0.2);
    expect(m.taken()).toEqual(range(1, 16));
    // atftp's buffer held 12 of the 16 (8 KiB blocks): no ACK comes, and no window ever gives a clean sample.
    m.clock.advance(10);
    expect(m.taken()).toEqual([16]);
    m.sender.ack(12);
    expect(m.taken()).toEqual(range(13, 28));
    m.clock.advance(8);
    expect(m.taken()).toEqual([28]);
  });

  it('lets the first window’s round trip replace a handshake round trip that timed the receiver’s resent ACK 0', () => {
    const m = manual(16);
    // ACK 0 was lost and the client resent it after its 200 ms timeout: the OACK's "round trip" is 217 ms.
    m.sender.start(217);
    expect(m.taken()).toEqual(range(1, 16));
    m.clock.advance(1);
    m.sender.ack(16);
    expect(m.taken()).toEqual(range(17, 32));
    expect(m.sender.rto).toBeLessThan(20);
    // Blocks 21 and 23 are lost: two ACKs inside the window, the second soon after the first's rewind.
    m.clock.advance(1);
    m.sender.ack(20);
    m.clock.advance(0.2);
    m.sender.ack(22);
    expect(m.taken()).toEqual(range(21, 38));
    // The client re-ACKs 22 after 50 ms of silence and counts the PE dead after 200 ms: block 23 must come before.
    let resent = false;
    for (let t = 0; t < 100 && !resent; t++) {
      m.clock.advance(1);
      if (t === 50) m.sender.ack(22);
      resent = m.taken().includes(23);
    }
    expect(resent).toBe(true);
  });

  it('gives up on a receiver that vanishes, after giveUpMs without progress', () => {
    const w = world({ windowsize: 16, lastBlock: 5_000, giveUpMs: 3_000, timeoutMs: 1_000 }, { vanishAfter: 200 });
    w.run();
    expect(w.gone).toBe(true);
    expect(w.done).toBe(false);
    expect(w.sender.acked).toBeLessThanOrEqual(200);
    // Nothing is sent after it gave up.
    const n = w.sends.length;
    w.clock.advance(60_000);
    expect(w.sends.length).toBe(n);
    expect(w.clock.pending).toBe(0);
  });

  it('waits for its own bytes without giving up, then goes on', () => {
    const clock = new ManualClock();
    let have = 4;
    const sent: number[] = [];
    let gone = false;
    let done = false;
    const s = new WindowSender(
      { windowsize: 8, firstBlock: 1, timeoutMs: 100, minTimeoutMs: 5, giveUpMs: 600 },
      { send: (n) => (n <= have ? (sent.push(n), true) : false), lastBlock: () => 10, done: () => (done = true), gone: () => (gone = true) },
      { clock },
    );
    s.start();
    s.ack(4);
    clock.advance(10_000);
    expect(gone).toBe(false);
    have = 10;
    s.more();
    s.ack(10);
    expect(done).toBe(true);
    expect(sent).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('sends nothing on a timer before start(), only the first block when asked', () => {
    const m = manual(8);
    m.sender.sendFirst();
    m.sender.sendFirst();
    m.clock.advance(30_000);
    expect(m.taken()).toEqual([1, 1]);
    expect(m.gone).toBe(false);
    m.sender.ack(1);
    m.sender.start();
    expect(m.taken()).toEqual(range(2, 9));
  });

  it('sends the first block once its bytes come when they were not here at first', () => {
    const clock = new ManualClock();
    let have = 0;
    const sent: number[] = [];
    const s = new WindowSender(
      { windowsize: 4, firstBlock: 1, timeoutMs: 100, minTimeoutMs: 5, giveUpMs: 600 },
      { send: (n) => (n <= have ? (sent.push(n), true) : false), lastBlock: () => 10, done: () => {}, gone: () => {} },
      { clock },
    );
    s.sendFirst();
    expect(sent).toEqual([]);
    have = 10;
    s.more();
    expect(sent).toEqual([1]);
    clock.advance(10_000);
    expect(sent).toEqual([1]);
  });

  it('resumes from a cookie’s block', () => {
    const clock = new ManualClock();
    const sent: number[] = [];
    const s = new WindowSender(
      { windowsize: 4, firstBlock: 65_535, timeoutMs: 100, minTimeoutMs: 5, giveUpMs: 600 },
      { send: (n) => (sent.push(n), true), lastBlock: () => 70_000, done: () => {}, gone: () => {} },
      { clock },
    );
    s.start();
    expect(sent).toEqual([65_535, 65_536, 65_537, 65_538]);
    s.ack(wireBlock(65_536));
    expect(s.acked).toBe(65_536);
  });

  it('skipTo before the start: the first window begins after the block the receiver holds, across a rollover', () => {
    const clock = new ManualClock();
    const sent: number[] = [];
    const s = new WindowSender(
      { windowsize: 4, firstBlock: 65_500, timeoutMs: 100, minTimeoutMs: 5, giveUpMs: 600 },
      { send: (n) => (sent.push(n), true), lastBlock: () => 70_000, done: () => {}, gone: () => {} },
      { clock },
    );
    s.skipTo(65_540);
    s.start();
    expect(sent).toEqual([65_541, 65_542, 65_543, 65_544]);
    s.ack(wireBlock(65_544));
    expect(s.acked).toBe(65_544);
    // Once running it moves nothing.
    s.skipTo(66_000);
    expect(s.acked).toBe(65_544);
  });
});
