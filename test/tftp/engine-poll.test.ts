/** The busy-poll component on a manual clock and a manual event loop. */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import { Poller, isLocalAddress, pollsFor, type PollerInit } from '../../lib/tftp/engine/poll.js';
import { pollSettings } from '../../lib/tftp/server/read.js';

function poller(enabled = true, settings: Omit<PollerInit, 'enabled'> = { spinMs: 0.1, maxTurns: 5, maxSkip: 4 }) {
  const clock = new ManualClock();
  const queue: Array<() => void> = [];
  let turns = 0;
  const p = new Poller({ enabled, ...settings }, { clock, schedule: (fn) => queue.push(fn) });
  /** Runs the event loop until nothing is scheduled; returns the turns polled. */
  const loop = (): number => {
    const before = turns;
    while (queue.length > 0) {
      turns++;
      queue.shift()!();
    }
    return turns - before;
  };
  return { clock, p, loop };
}

describe('busy-poll', () => {
  it('polls nothing when off', () => {
    const w = poller(false);
    w.p.expect();
    expect(w.p.spinning).toBe(false);
    expect(w.loop()).toBe(0);
  });

  it('polls a wait for at most maxTurns turns or spinMs, whichever ends first', () => {
    const w = poller();
    w.p.expect();
    expect(w.p.spinning).toBe(true);
    expect(w.loop()).toBe(6);
    expect(w.p.spinning).toBe(false);
    w.p.expect();
    w.clock.advance(1);
    expect(w.loop()).toBe(1);
  });

  it('backs off after two misses in a row: 1, 2, 4 ... waits unpolled, up to maxSkip', () => {
    const w = poller();
    const polled: boolean[] = [];
    for (let i = 0; i < 20; i++) {
      w.p.expect();
      polled.push(w.p.spinning);
      w.loop();
    }
    // miss, miss (skip 1), poll+miss (skip 2), poll+miss (skip 4), poll+miss (skip 4) ...
    expect(polled.map((b) => (b ? 'P' : '.')).join('')).toBe('PP.P..P....P....P...');
  });

  it('an answer while polling resets the backoff', () => {
    const w = poller();
    for (let i = 0; i < 4; i++) {
      w.p.expect();
      w.loop();
    }
    // Skipping now; once it polls again and the answer comes, the next wait is polled at once.
    while (!w.p.spinning) w.p.expect();
    w.p.heard(true);
    w.loop();
    w.p.expect();
    expect(w.p.spinning).toBe(true);
  });

  it("the PE polls for a lock-step ACK that takes 50 µs, not for a window's: that one backs off", () => {
    /** Ten waits, each answered 50 µs after the window went (an event-loop turn taking 10 µs); which were polled. */
    const waits = (windowsize: number): string => {
      const clock = new ManualClock();
      const queue: Array<() => void> = [];
      const p = new Poller({ enabled: true, ...pollSettings(windowsize) }, { clock, schedule: (fn) => queue.push(fn) });
      let polled = '';
      for (let i = 0; i < 10; i++) {
        p.expect();
        polled += p.spinning ? 'P' : '.';
        for (let turn = 1; turn <= 5; turn++) {
          clock.advance(0.01);
          if (turn === 5) p.heard(true);
          else queue.shift()?.();
        }
      }
      return polled;
    };
    expect(waits(1)).toBe('PPPPPPPPPP');
    expect(waits(4)).toBe('PP.P..P...');
  });

  it('stops at the next turn once the transfer is over', () => {
    const w = poller();
    w.p.expect();
    w.p.stop();
    expect(w.loop()).toBe(1);
    w.p.expect();
    expect(w.loop()).toBe(0);
  });

  it('is on for a peer on this host under auto, and as told otherwise', () => {
    expect(isLocalAddress('127.0.0.1')).toBe(true);
    expect(isLocalAddress('127.0.0.7')).toBe(true);
    expect(isLocalAddress('::1')).toBe(true);
    expect(isLocalAddress('192.0.2.1')).toBe(false);
    expect(pollsFor('auto', '127.0.0.1')).toBe(true);
    expect(pollsFor('auto', '192.0.2.1')).toBe(false);
    expect(pollsFor('on', '192.0.2.1')).toBe(true);
    expect(pollsFor('off', '127.0.0.1')).toBe(false);
  });
});
