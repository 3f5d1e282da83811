/**
 * Connection caps and timeouts on the ASAP, ENRP and asap-listen listeners
 * (issue 11, finding 5): real sockets on 127.0.0.x; waits are on socket
 * events with a deadline, or on a ManualClock.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import { createHandlespace } from '../../lib/handlespace/index.js';
import { createEnrpServer } from '../../lib/enrp/index.js';
import { createRegistrar, type Registrar, type RegistrarInit } from '../../lib/registrar/index.js';
import { createPoolElement } from '../../lib/pool-element/index.js';
import { encodeAsapMessage } from '../../protocols/asap/codec.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { PolicyType } from '../../protocols/parameters/types.js';
import { waitFor, withDeadline } from '../transport/util.js';

interface Raw {
  sock: Socket;
  readonly closed: Promise<void>;
  readonly isClosed: boolean;
  /** Sends a handle resolution and resolves at the first bytes back. */
  ask(): Promise<void>;
}

const resolution = Buffer.from(encodeAsapMessage({ type: AsapMessageType.HandleResolution, handle: new TextEncoder().encode('nobody') }));

/** Resolves once connected, or once reset: a refused connection may be reset before the client sees it connect. */
function open(port: number, localAddress = '127.0.0.1'): Promise<Raw> {
  return withDeadline(
    new Promise<Raw>((resolve) => {
      const sock = netConnect({ host: '127.0.0.1', port, localAddress });
      let closed = false;
      const closedP = new Promise<void>((r) => sock.on('close', () => ((closed = true), r())));
      sock.on('error', () => {});
      const raw: Raw = {
        sock,
        closed: closedP,
        get isClosed() {
          return closed;
        },
        ask: () =>
          withDeadline(
            new Promise<void>((r, j) => {
              if (closed) return j(new Error('closed instead of answering'));
              sock.once('data', () => r());
              sock.once('close', () => j(new Error('closed instead of answering')));
              sock.write(resolution);
            }),
            5_000,
            'an answer',
          ),
      };
      sock.once('connect', () => resolve(raw));
      void closedP.then(() => resolve(raw));
    }),
    5_000,
    'connect',
  );
}

const closedWithin = (r: Raw, ms: number, what: string): Promise<void> => withDeadline(r.closed, ms, what);

const stoppers: (() => Promise<void>)[] = [];
const sockets: Raw[] = [];
afterEach(async () => {
  for (const r of sockets.splice(0)) r.sock.destroy();
  for (const s of stoppers.splice(0).reverse()) await s();
});

async function registrar(init: Partial<RegistrarInit> = {}, clock?: ManualClock): Promise<Registrar> {
  const reg = createRegistrar({ asap: ['tcp://127.0.0.1:0'], announce: false, ...init }, clock ? { clock } : {});
  await reg.start();
  stoppers.push(() => reg.stop());
  return reg;
}

async function track(p: Promise<Raw>): Promise<Raw> {
  const r = await p;
  sockets.push(r);
  return r;
}

describe('security - connection caps and timeouts', () => {
  it('registrar - resets connections beyond the per-host and per-listener caps and admits again when one closes', async () => {
    const reg = await registrar({ connectionLimits: { maxConnections: 4, maxConnectionsPerHost: 3 } });
    const port = reg.addresses[0]!.port;
    const fromA = [await track(open(port)), await track(open(port)), await track(open(port))];
    for (const r of fromA) await r.ask();
    const fourthA = await track(open(port));
    await closedWithin(fourthA, 5_000, 'the 4th connection from 127.0.0.1 is reset');
    const fromB = await track(open(port, '127.0.0.2'));
    await fromB.ask();
    const fromC = await track(open(port, '127.0.0.3'));
    await closedWithin(fromC, 5_000, 'a 5th connection on the listener is reset');
    expect(reg.connectionCount).toBe(4);
    const gone = waitFor(reg, 'disconnect');
    fromA[0]!.sock.destroy();
    await gone;
    const again = await track(open(port));
    await again.ask();
    expect(reg.connectionCount).toBe(4);
  });

  it('registrar - closes a connection that sends no message for 10 s by default, and leaves an idle one that did', async () => {
    const clock = new ManualClock();
    const reg = await registrar({}, clock);
    const port = reg.addresses[0]!.port;
    const active = await track(open(port));
    await active.ask();
    const seen = waitFor(reg, 'connection');
    const silent = await track(open(port));
    await seen;
    clock.advance(9_999);
    await active.ask();
    expect(silent.isClosed).toBe(false);
    clock.advance(1);
    await closedWithin(silent, 5_000, 'the silent connection is closed at 10 s');
    // Idle timeout is off by default: a connection that spoke once stays.
    clock.advance(3_600_000);
    await active.ask();
  });

  it('registrar - closes a connection silent past the idle timeout', async () => {
    const reg = await registrar({ connectionLimits: { idleTimeoutMs: 200, firstMessageTimeoutMs: 0 } });
    const r = await track(open(reg.addresses[0]!.port));
    await r.ask();
    await closedWithin(r, 5_000, 'the idle connection is closed');
  });

  it('registrar - closes a connection that begins a message and never finishes it', async () => {
    const reg = await registrar({ connectionLimits: { partialMessageTimeoutMs: 200, firstMessageTimeoutMs: 0, idleTimeoutMs: 0 } });
    const r = await track(open(reg.addresses[0]!.port));
    // A header announcing 100 bytes, then nothing.
    r.sock.write(Buffer.from([AsapMessageType.HandleResolution, 0, 0, 100, 0, 0]));
    await closedWithin(r, 5_000, 'the unfinished message closes the connection');
  });

  it('registrar - at a cap the oldest connection that never spoke makes room, so silent connections cannot lock out a client', async () => {
    const reg = await registrar({ connectionLimits: { maxConnections: 4, maxConnectionsPerHost: 3 } });
    const port = reg.addresses[0]!.port;
    const silentA = [await track(open(port)), await track(open(port)), await track(open(port))];
    const silentB = await track(open(port, '127.0.0.2'));
    const client = await track(open(port, '127.0.0.3'));
    await client.ask();
    await closedWithin(silentA[0]!, 5_000, 'the oldest silent connection is reset for the new one');
    // per host: a 4th from 127.0.0.1 pushes out that host's oldest silent one, not 127.0.0.2's
    const fromA = await track(open(port));
    await fromA.ask();
    await closedWithin(silentA[1]!, 5_000, "127.0.0.1's oldest silent connection is reset");
    expect(silentB.isClosed).toBe(false);
    expect(client.isClosed).toBe(false);
  });

  it('ENRP - resets connections beyond the per-host cap and closes one that never speaks', async () => {
    const capped = createEnrpServer({
      id: 0x51,
      handlespace: createHandlespace(),
      listen: ['tcp://127.0.0.1:0'],
      multicast: false,
      connectionLimits: { maxConnectionsPerHost: 2 },
    });
    await capped.start();
    stoppers.push(() => capped.stop());
    const port = Number(new URL(capped.listenUrls[0]!).port);
    const first = await track(open(port));
    await track(open(port));
    const third = await track(open(port));
    // neither spoke: the oldest makes room for the newest
    await closedWithin(first, 5_000, 'the oldest silent ENRP connection from one host is reset for the 3rd');
    expect(third.isClosed).toBe(false);

    const timed = createEnrpServer({
      id: 0x52,
      handlespace: createHandlespace(),
      listen: ['tcp://127.0.0.1:0'],
      multicast: false,
      connectionLimits: { firstMessageTimeoutMs: 200 },
    });
    await timed.start();
    stoppers.push(() => timed.stop());
    const silent = await track(open(Number(new URL(timed.listenUrls[0]!).port)));
    await closedWithin(silent, 5_000, 'the silent ENRP connection is closed');
  });

  it('PE asap-listen - caps connections per host and closes one that never speaks', async () => {
    const reg = await registrar();
    const pe = createPoolElement({
      handle: 'guarded',
      policy: { type: PolicyType.RoundRobin },
      userTransport: { protocol: 'tcp', port: 7000, addresses: ['127.0.0.1'], transportUse: 0 },
      registrars: [reg.addresses[0]!.href],
      asapListen: 'tcp://127.0.0.1:0',
      asapListenLimits: { maxConnectionsPerHost: 1, firstMessageTimeoutMs: 1_000 },
    });
    await pe.start();
    stoppers.push(() => pe.stop());
    const port = reg.handlespace.get('guarded', pe.identifier)!.asapTransport!.port;
    const first = await track(open(port));
    const second = await track(open(port));
    await closedWithin(first, 5_000, 'the older silent asap-listen connection from one host is reset for the 2nd');
    expect(second.isClosed).toBe(false);
    await closedWithin(second, 5_000, 'the silent asap-listen connection is closed');
  });

  it('registrar at its file descriptor limit (ulimit -n 64) - 100 silent connections neither spin the CPU nor keep it unavailable', async () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const child = spawn(
      'sh',
      [
        '-c',
        'ulimit -n 64 && exec "$0" --import tsx lib/cli/main.ts registrar --asap tcp://127.0.0.1:0 --http off --announce off --first-message-timeout 1s',
        process.execPath,
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    stoppers.push(async () => {
      child.kill('SIGKILL');
    });
    const port = await withDeadline(
      new Promise<number>((resolve) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /asap tcp:\/\/127\.0\.0\.1:(\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
      }),
      20_000,
      'the registrar starting',
    );
    /** User plus system CPU time of the registrar, in ms (clock ticks of 10 ms). */
    const cpuMs = (): number => {
      const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(f[11]) + Number(f[12])) * 10;
    };
    const cpu0 = cpuMs();
    const t0 = performance.now();
    const flood = await Promise.all(Array.from({ length: 100 }, () => track(open(port))));
    // Those past the descriptor limit are dropped at accept, the rest at the first-message timeout.
    await withDeadline(Promise.all(flood.map((r) => r.closed)), 15_000, 'every silent connection closed');
    const wall = performance.now() - t0;
    expect(cpuMs() - cpu0).toBeLessThan(wall / 2);
    const legit = await track(open(port));
    await legit.ask();
  });
});
