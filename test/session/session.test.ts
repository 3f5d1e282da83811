import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import { createMemoryNetwork, createTcpTransport, type MemoryNetwork } from '../../lib/transport/index.js';
import type { MessageTransport } from '../../lib/transport/types.js';
import {
  createSessionServer,
  openSession,
  FailoverLimitError,
  NoPoolElementError,
  SessionClosedError,
  type FailoverEvent,
  type Session,
  type SessionResolver,
  type SessionServer,
} from '../../lib/session/index.js';
import { MAX_CHUNK_SIZE, encodeDataFrames } from '../../lib/session/frames.js';
import { encodeAsapMessage } from '../../protocols/asap/codec.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import type { RSerPoolError } from '../../lib/errors.js';
import { collect, frameMessage, waitFor, withDeadline } from '../transport/util.js';
import { fakeResolver, pattern, peOf, recordServer, str, text } from './helpers.js';

type Scheme = 'memory' | 'tcp';

interface Net {
  /** The PU's transport. */
  pu: MessageTransport;
  /** A started session server: memory host 127.0.1.<n>, or tcp on 127.0.0.1 port 0. */
  server(n: number, opts?: { clock?: ManualClock }): Promise<SessionServer>;
  memory?: MemoryNetwork;
}

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function makeNet(scheme: Scheme, clock?: ManualClock): Net {
  if (scheme === 'tcp') {
    const t = createTcpTransport();
    return {
      pu: t,
      async server() {
        const s = createSessionServer({ listen: 'tcp://127.0.0.1:0', transport: t });
        await s.start();
        cleanups.push(() => s.stop());
        return s;
      },
    };
  }
  const memory = createMemoryNetwork({}, clock ? { clock } : {});
  return {
    memory,
    pu: memory.transport('127.0.2.1'),
    async server(n, opts = {}) {
      const s = createSessionServer(
        { listen: `memory://127.0.1.${n}:7000`, transport: memory.transport(`127.0.1.${n}`) },
        opts.clock ? { clock: opts.clock } : {},
      );
      await s.start();
      cleanups.push(() => s.stop());
      return s;
    },
  };
}

async function open(net: Net, resolver: SessionResolver, extra: { clock?: ManualClock; maxFailovers?: number } = {}): Promise<Session> {
  const s = await openSession(
    { handle: 'counter', resolver, transport: net.pu, maxFailovers: extra.maxFailovers, heartbeatIntervalMs: 1_000, heartbeatTimeoutMs: 1_000 },
    extra.clock ? { clock: extra.clock } : {},
  );
  cleanups.push(() => s.close());
  return s;
}

describe.each<Scheme>(['memory', 'tcp'])('session over %s://', (scheme) => {
  it('carries messages both ways, in order', async () => {
    const net = makeNet(scheme);
    const a = await net.server(1);
    const rec = recordServer(a);
    const s = await open(net, fakeResolver([peOf(1, a.address)]));
    expect(s.pe.identifier).toBe(1);
    const replies = collect(s, 'message', 20);
    for (let i = 0; i < 20; i++) s.send(text(`ping:${i}`));
    const got = (await replies).map(([m]) => str(m));
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => `pong:${i}`));
    expect(rec.log.filter((e) => e.event === 'message').map((e) => e.data)).toEqual(Array.from({ length: 20 }, (_, i) => `ping:${i}`));
  });

  it('chunks messages above one frame and reassembles them (and empty messages)', async () => {
    const net = makeNet(scheme);
    const a = await net.server(1);
    recordServer(a);
    const s = await open(net, fakeResolver([peOf(1, a.address)]));
    const sizes = [0, 1, MAX_CHUNK_SIZE, MAX_CHUNK_SIZE + 1, 3 * MAX_CHUNK_SIZE, 1_000_003];
    const replies = collect(s, 'message', sizes.length, 20_000);
    for (const [i, n] of sizes.entries()) s.send(pattern(n, i));
    const got = await replies;
    for (const [i, n] of sizes.entries()) {
      expect(got[i]![0].length).toBe(n);
      expect(Buffer.from(got[i]![0]).equals(Buffer.from(pattern(n, i)))).toBe(true);
    }
  });

  it('delivers the PE cookie to the PU as lastCookie', async () => {
    const net = makeNet(scheme);
    const a = await net.server(1);
    recordServer(a);
    const s = await open(net, fakeResolver([peOf(1, a.address)]));
    const cookie = waitFor(s, 'cookie');
    s.send(text('cookie:state-42'));
    const [c] = await cookie;
    expect(str(c)).toBe('state-42');
    expect(str(s.lastCookie!)).toBe('state-42');
  });

  it('fails over when the PE resets the connection: cookie echo first, then queued data, reportUnreachable for the dead PE', async () => {
    const net = makeNet(scheme);
    const [a, b] = [await net.server(1), await net.server(2)];
    const recA = recordServer(a);
    const recB = recordServer(b);
    const resolver = fakeResolver([peOf(1, a.address), peOf(2, b.address)]);
    const s = await open(net, resolver);
    const cookie = waitFor(s, 'cookie');
    s.send(text('cookie:count=5'));
    await cookie;

    const failover = waitFor(s, 'failover');
    recA.sessions[0]!.abort();
    // Sent while the session notices and fails over: queued, delivered to B after the echo (or to nobody).
    s.send(text('after-1'));
    const [ev] = (await failover) as [FailoverEvent];
    s.send(text('after-2'));
    expect(ev.from.identifier).toBe(1);
    expect(ev.to.identifier).toBe(2);
    expect(ev.cookieEchoed).toBe(true);
    expect(s.pe.identifier).toBe(2);
    await withDeadline(resolver.reported(1), 5_000, 'reportUnreachable(1)');
    const echo = waitFor(s, 'message', { filter: (m) => str(m) === 'after-2' });
    await echo;
    const logB = recB.log.filter((e) => e.event !== 'open').map((e) => `${e.event}:${e.data}`);
    expect(logB[0]).toBe('echo:count=5');
    expect(logB).toContain('message:after-2');
    // after-1 went either to A before the reset was seen (lost with A) or to B after the echo, never twice.
    expect(logB.filter((e) => e === 'message:after-1').length + recA.log.filter((e) => e.data === 'after-1').length).toBeLessThanOrEqual(1);
  });

  it('tries the PEs of the last business card before resolving', async () => {
    const net = makeNet(scheme);
    const [a, b, c] = [await net.server(1), await net.server(2), await net.server(3)];
    const recA = recordServer(a);
    recordServer(b);
    const recC = recordServer(c);
    const resolver = fakeResolver([peOf(1, a.address), peOf(2, b.address)]);
    const s = await open(net, resolver);
    const card = waitFor(s, 'businessCard');
    recA.sessions[0]!.sendBusinessCard('counter', [peOf(3, c.address)]);
    const [, elements] = await card;
    expect(elements.map((e) => e.identifier)).toEqual([3]);
    expect(s.lastWill.map((e) => e.identifier)).toEqual([3]);
    const failover = waitFor(s, 'failover');
    recA.sessions[0]!.abort();
    const [ev] = await failover;
    expect(ev.to.identifier).toBe(3);
    expect(ev.cookieEchoed).toBe(false);
    expect(resolver.resolveCalls).toBe(1);
    const pong = waitFor(s, 'message');
    s.send(text('ping:c'));
    expect(str((await pong)[0])).toBe('pong:c');
    expect(recC.log.some((e) => e.data === 'ping:c')).toBe(true);
  });

  it('gives up with NoPoolElementError when no PE is left, and refuses send() after', async () => {
    const net = makeNet(scheme);
    const a = await net.server(1);
    const recA = recordServer(a);
    const resolver = fakeResolver([peOf(1, a.address)]);
    const s = await open(net, resolver);
    const closed = waitFor(s, 'close');
    recA.sessions[0]!.abort();
    const [err] = await closed;
    expect(err).toBeInstanceOf(NoPoolElementError);
    expect(err?.code).toBe('RSP_ERR_NO_POOL_ELEMENT');
    expect(s.state).toBe('closed');
    expect(() => s.send(text('x'))).toThrow(SessionClosedError);
    await expect(s.failover()).rejects.toBeInstanceOf(SessionClosedError);
    expect(resolver.unreachable).toContain(1);
  });

  it('gives up with FailoverLimitError beyond maxFailovers', async () => {
    const net = makeNet(scheme);
    const [a, b] = [await net.server(1), await net.server(2)];
    const recA = recordServer(a);
    recordServer(b);
    const s = await open(net, fakeResolver([peOf(1, a.address), peOf(2, b.address)]), { maxFailovers: 0 });
    const closed = waitFor(s, 'close');
    recA.sessions[0]!.abort();
    const [err] = await closed;
    expect(err).toBeInstanceOf(FailoverLimitError);
  });

  it('fails over when the application asks (request timeout), reporting the PE', async () => {
    const net = makeNet(scheme);
    const [a, b] = [await net.server(1), await net.server(2)];
    recordServer(a);
    const recB = recordServer(b);
    const resolver = fakeResolver([peOf(1, a.address), peOf(2, b.address)]);
    const s = await open(net, resolver);
    const failover = waitFor(s, 'failover');
    await s.failover('request 7 timed out');
    const [ev] = await failover;
    expect(ev.reason.code).toBe('RSP_ERR_FAILOVER_REQUESTED');
    expect(s.pe.identifier).toBe(2);
    expect(resolver.unreachable).toContain(1);
    const pong = waitFor(s, 'message');
    s.send(text('ping:b'));
    expect(str((await pong)[0])).toBe('pong:b');
    expect(recB.log.some((e) => e.data === 'ping:b')).toBe(true);
  });

  it('opens on the next PE when the first does not answer, and fails with NoPoolElementError when none does', async () => {
    const net = makeNet(scheme);
    const a = await net.server(1);
    const b = await net.server(2);
    recordServer(b);
    const deadAddress = a.address;
    await a.stop();
    const resolver = fakeResolver([peOf(1, deadAddress), peOf(2, b.address)]);
    const s = await open(net, resolver);
    expect(s.pe.identifier).toBe(2);
    expect(resolver.unreachable).toEqual([1]);
    await expect(open(net, fakeResolver([peOf(1, deadAddress)]))).rejects.toBeInstanceOf(NoPoolElementError);
    await expect(open(net, fakeResolver([]))).rejects.toMatchObject({ code: 'RSP_ERR_NO_POOL_ELEMENT' });
  });

  it.each([
    ['a reserved DATA flag', frameMessage({ type: 0xd0, flags: 0x80, payload: text('bad!') })],
    ['an unknown frame type', frameMessage({ type: 0x77, payload: text('bad!') })],
    ['a short heartbeat', frameMessage({ type: 0xd1, payload: new Uint8Array(0) })],
    ['a truncated ASAP cookie', frameMessage({ type: 0x0b, payload: new Uint8Array([0, 0x0d, 0, 40]) })],
  ])('a malformed frame (%s) closes only that session; the others carry on', async (_what, bad) => {
    const net = makeNet(scheme);
    const a = await net.server(1);
    const rec = recordServer(a);
    const good = await open(net, fakeResolver([peOf(1, a.address)]));
    const badConn = await net.pu.connect(a.address, { ppid: 0 });
    cleanups.push(() => badConn.abort());
    const badClosed = waitFor(badConn, 'close');
    badConn.send(bad);
    await badClosed;
    await withDeadline(
      (async () => {
        while (!rec.log.some((e) => e.event === 'close' && e.data === 'RSP_ERR_SESSION_PROTOCOL')) await new Promise((r) => setImmediate(r));
      })(),
      5_000,
      'protocol error close on the server',
    );
    const pong = waitFor(good, 'message');
    good.send(text('ping:still-here'));
    expect(str((await pong)[0])).toBe('pong:still-here');
    expect(a.sessions.length).toBe(1);
  });

  it('hands the PU business card to the PE, and again to the next PE after a failover', async () => {
    const net = makeNet(scheme);
    const [a, b] = [await net.server(1), await net.server(2)];
    const recA = recordServer(a);
    const recB = recordServer(b);
    const s = await open(net, fakeResolver([peOf(1, a.address), peOf(2, b.address)]));
    const cardA = waitFor(recA.sessions[0]!, 'businessCard');
    s.sendBusinessCard('pu-pool', [peOf(9, a.address)]);
    const [handle, elements] = await cardA;
    expect(str(handle)).toBe('pu-pool');
    expect(elements[0]!.identifier).toBe(9);
    const failover = waitFor(s, 'failover');
    recA.sessions[0]!.abort();
    await failover;
    const pong = waitFor(s, 'message');
    s.send(text('ping:x'));
    await pong;
    expect(recB.log.filter((e) => e.event !== 'open').map((e) => e.event)).toEqual(['card', 'message']);
  });
});

describe('session over memory:// with a manual clock', () => {
  it('notices a killed PE host by heartbeat timeout and fails over to the second PE with the cookie', async () => {
    const clock = new ManualClock();
    const net = makeNet('memory', clock);
    const [a, b] = [await net.server(1, { clock }), await net.server(2, { clock })];
    recordServer(a);
    const recB = recordServer(b);
    const resolver = fakeResolver([peOf(1, a.address), peOf(2, b.address)]);
    const s = await open(net, resolver, { clock });
    const cookie = waitFor(s, 'cookie');
    s.send(text('cookie:count=3'));
    await cookie;

    net.memory!.kill('127.0.1.1');
    s.send(text('lost-with-a'));
    const failover = waitFor(s, 'failover');
    // Heartbeat after 1 s of silence, given up 1 s later.
    await clock.advanceAsync(2_000, 250);
    s.send(text('ping:queued'));
    const [ev] = await failover;
    expect(ev.from.identifier).toBe(1);
    expect(ev.to.identifier).toBe(2);
    expect(ev.cookieEchoed).toBe(true);
    expect(ev.reason.code).toBe('RSP_ERR_PEER_TIMEOUT');
    expect(resolver.unreachable).toEqual([1]);
    const pong = waitFor(s, 'message');
    await pong;
    const logB = recB.log.filter((e) => e.event !== 'open').map((e) => `${e.event}:${e.data}`);
    expect(logB).toEqual(['echo:count=3', 'message:ping:queued']);
  });

  it('keeps a live but quiet PE: heartbeats are answered', async () => {
    const clock = new ManualClock();
    const net = makeNet('memory', clock);
    const a = await net.server(1, { clock });
    recordServer(a);
    const s = await open(net, fakeResolver([peOf(1, a.address)]), { clock });
    let closed: RSerPoolError | undefined | 'open' = 'open';
    s.on('close', (e) => (closed = e));
    await clock.advanceAsync(20_000, 100);
    expect(closed).toBe('open');
    expect(s.state).toBe('open');
    expect(s.pe.identifier).toBe(1);
  });

  it('closes with FailoverTimeoutError when the next PE never answers the connect', async () => {
    const clock = new ManualClock();
    const net = makeNet('memory', clock);
    const [a, b] = [await net.server(1, { clock }), await net.server(2, { clock })];
    const recA = recordServer(a);
    recordServer(b);
    const s = await openSession(
      {
        handle: 'counter',
        resolver: fakeResolver([peOf(1, a.address), peOf(2, b.address)]),
        transport: net.pu,
        heartbeatIntervalMs: 0,
        connectTimeoutMs: 60_000,
        failoverTimeoutMs: 3_000,
      },
      { clock },
    );
    cleanups.push(() => s.close());
    // B's host is cut off: its SYN goes nowhere.
    net.memory!.partition(['127.0.2.1'], ['127.0.1.2']);
    const closed = waitFor(s, 'close');
    recA.sessions[0]!.abort();
    await new Promise((r) => setImmediate(r));
    await clock.advanceAsync(3_000, 500);
    const [err] = await closed;
    expect(err?.code).toBe('RSP_ERR_FAILOVER_TIMEOUT');
  });
});

describe('session failover queue', () => {
  async function stuckInFailover(maxPendingBytes?: number): Promise<{ s: Session; clock: ManualClock }> {
    const clock = new ManualClock();
    const net = makeNet('memory', clock);
    const [a, b] = [await net.server(1, { clock }), await net.server(2, { clock })];
    const recA = recordServer(a);
    recordServer(b);
    const s = await openSession(
      {
        handle: 'counter',
        resolver: fakeResolver([peOf(1, a.address), peOf(2, b.address)]),
        transport: net.pu,
        heartbeatIntervalMs: 0,
        maxPendingBytes,
      },
      { clock },
    );
    cleanups.push(() => s.close());
    net.memory!.partition(['127.0.2.1'], ['127.0.1.2']);
    recA.sessions[0]!.abort();
    await withDeadline(
      (async () => {
        while (s.state !== 'failing-over') await new Promise((r) => setImmediate(r));
      })(),
      5_000,
      'failover start',
    );
    return { s, clock };
  }

  it('refuses send() beyond maxPendingBytes while failing over', async () => {
    const { s } = await stuckInFailover(10);
    s.send(new Uint8Array(6));
    expect(() => s.send(new Uint8Array(6))).toThrow(expect.objectContaining({ code: 'RSP_ERR_SESSION_LIMIT' }) as Error);
  });

  it('close() during a failover drops the queue, emits close without an error, and rejects waiting failover() calls', async () => {
    const { s } = await stuckInFailover();
    s.send(text('queued'));
    const waiting = s.failover();
    const closed = waitFor(s, 'close');
    await s.close();
    const [err] = await closed;
    expect(err).toBeUndefined();
    await expect(waiting).rejects.toBeInstanceOf(SessionClosedError);
    expect(() => s.send(text('x'))).toThrow(SessionClosedError);
  });
});

describe('session over tcp://', () => {
  it('puts ASAP control on the stream byte-exact RFC 5352, data in 0xd0 frames', async () => {
    const net = makeNet('tcp');
    const a = await net.server(1);
    const rec = recordServer(a);
    const raw = await net.pu.connect(a.address);
    cleanups.push(() => raw.abort());
    const frames = collect(raw, 'message', 1);
    raw.send(encodeAsapMessage({ type: AsapMessageType.CookieEcho, cookie: text('old') }));
    raw.send(encodeDataFrames(text('cookie:new'))[0]!);
    const got = (await frames).map(([m]) => Buffer.from(m).toString('hex'));
    expect(got[0]).toBe(Buffer.from(encodeAsapMessage({ type: AsapMessageType.Cookie, cookie: text('new') })).toString('hex'));
    expect(rec.log.map((e) => e.event)).toEqual(['open', 'echo', 'message']);
    const reply = waitFor(raw, 'message');
    raw.send(encodeDataFrames(text('ping:1'))[0]!);
    expect(Buffer.from((await reply)[0]).toString('hex')).toBe(Buffer.from(encodeDataFrames(text('pong:1'))[0]!).toString('hex'));
  });

  it('fails over when the serving PE stops (its sockets close)', async () => {
    const net = makeNet('tcp');
    const [a, b] = [await net.server(1), await net.server(2)];
    recordServer(a);
    const recB = recordServer(b);
    const resolver = fakeResolver([peOf(1, a.address), peOf(2, b.address)]);
    const s = await open(net, resolver);
    const cookie = waitFor(s, 'cookie');
    s.send(text('cookie:c1'));
    await cookie;
    const failover = waitFor(s, 'failover');
    await a.stop();
    const [ev] = await failover;
    expect(ev.to.identifier).toBe(2);
    expect(resolver.unreachable).toContain(1);
    const pong = waitFor(s, 'message');
    s.send(text('ping:1'));
    await pong;
    expect(recB.log.filter((e) => e.event !== 'open').map((e) => `${e.event}:${e.data}`)).toEqual(['echo:c1', 'message:ping:1']);
  });
});

describe('session - a PE that leaves the pool', () => {
  it('sends each PU its cookie and a business card, then closes: the PU moves to the card at once and does not report the PE', async () => {
    const net = makeNet('tcp');
    const [a, b, c] = [await net.server(1), await net.server(2), await net.server(3)];
    recordServer(a);
    recordServer(b);
    const recC = recordServer(c);
    const resolver = fakeResolver([peOf(1, a.address), peOf(2, b.address)]);
    const s = await open(net, resolver);
    const failover = waitFor(s, 'failover');
    await a.leave({ handle: 'counter', elements: [peOf(3, c.address)], cookieOf: () => text('state-at-leave') });
    const [ev] = await withDeadline(failover, 10_000);
    expect(ev.to.identifier).toBe(3);
    expect(ev.cookieEchoed).toBe(true);
    expect(ev.reason.message).toMatch(/left the pool/);
    expect(resolver.unreachable).toEqual([]);
    const pong = waitFor(s, 'message');
    s.send(text('ping:after'));
    expect(str((await pong)[0])).toBe('pong:after');
    expect(recC.log.filter((e) => e.event !== 'open').map((e) => `${e.event}:${e.data}`)).toEqual(['echo:state-at-leave', 'message:ping:after']);
    expect(a.sessions).toHaveLength(0);
  });
});
