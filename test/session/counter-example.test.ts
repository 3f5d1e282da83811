/** The counter example end to end: two PEs as real processes on loopback, the PU in-process, the serving PE SIGKILLed mid-run. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { openSession, type FailoverEvent } from '../../lib/session/index.js';
import { DEFAULT_SECRET, POOL_HANDLE, openCookie, sealCookie, staticResolver } from '../../examples/counter/common.js';
import { runCounterClient } from '../../examples/counter/client.js';
import { withDeadline } from '../transport/util.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      const exited = once(c, 'exit');
      c.kill('SIGKILL');
      await exited;
    }
  }
});

/** Starts a counter PE; resolves with its bound address, the first line it prints. */
async function startPe(): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/counter/server.ts', '--listen', 'tcp://127.0.0.1:0'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RSERPOOL_LOG_LEVEL: 'info' },
  });
  children.push(child);
  let out = '';
  const address = new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl).trim());
    });
    child.once('exit', (code) => reject(new Error(`counter PE exited (${code}) before printing its address`)));
  });
  return { child, address: await withDeadline(address, 20_000, 'counter PE address') };
}

describe('counter example', () => {
  it('continues the count from the cookie after the serving PE is SIGKILLed', async () => {
    const [a, b] = await Promise.all([startPe(), startPe()]);
    expect(a.address).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    const resolver = staticResolver([a.address, b.address]);
    const session = await openSession({ handle: POOL_HANDLE, resolver });
    const failovers: FailoverEvent[] = [];
    session.on('failover', (e) => failovers.push(e));
    const byId = new Map([
      [1, a.child],
      [2, b.child],
    ]);
    const servedFirst = session.pe.identifier;
    try {
      const values = await withDeadline(
        runCounterClient(session, {
          count: 10,
          onValue: async (value) => {
            if (value !== 5) return;
            expect(openCookie(DEFAULT_SECRET, session.lastCookie!)).toEqual({ count: 5, seq: 5 });
            const serving = byId.get(session.pe.identifier)!;
            const exited = once(serving, 'exit');
            serving.kill('SIGKILL');
            await exited;
          },
        }),
        30_000,
        'ten counter values',
      );
      expect(values).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    } finally {
      await session.close();
    }
    expect(failovers).toHaveLength(1);
    expect(failovers[0]!.from.identifier).toBe(servedFirst);
    expect(failovers[0]!.to.identifier).not.toBe(servedFirst);
    expect(failovers[0]!.cookieEchoed).toBe(true);
    expect(resolver.down.has(servedFirst)).toBe(true);
    expect(openCookie(DEFAULT_SECRET, session.lastCookie!)).toEqual({ count: 10, seq: 10 });
  });

  it('a cookie opens only with the secret that sealed it, and not after tampering', () => {
    const cookie = sealCookie(DEFAULT_SECRET, { count: 3, seq: 3 });
    expect(openCookie(DEFAULT_SECRET, cookie)).toEqual({ count: 3, seq: 3 });
    expect(openCookie('another-secret', cookie)).toBeUndefined();
    const flipped = cookie.slice();
    flipped[8] = flipped[8]! ^ 1;
    expect(openCookie(DEFAULT_SECRET, flipped)).toBeUndefined();
  });
});
