import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { dirname, extname, join } from 'node:path';
import { createPoolUser } from '../pool-user/index.js';
import { silentLogger } from '../logger.js';
import type { PoolElementParameter } from '../../protocols/parameters/types.js';
import { CliUsageError, type Command } from './command.js';
import { hex32 } from './process.js';
import { parseOptions, integer, str, type OptionSpec } from './options.js';

const specs: Record<string, OptionSpec> = {
  json: { type: 'boolean', help: 'end with one JSON line of results' },
  requests: { type: 'string', help: 'requests the client sends', default: '24' },
};

const here = dirname(fileURLToPath(import.meta.url));
const ext = extname(fileURLToPath(import.meta.url));
const CLI = join(here, `main${ext}`);
const COUNTER_PE = join(here, '..', '..', 'examples', 'counter', `server${ext}`);

interface Child {
  name: string;
  proc: ChildProcess;
  lines: string[];
  waitFor(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
}

/**
 * A pool on loopback, no configuration: two registrars sharing the
 * handlespace by ENRP, three stateful PEs (the counter example) and a client
 * whose session survives its PE and its registrar being killed with -9.
 */
export const demoCommand: Command = {
  async run(argv) {
    const { values, positionals } = parseOptions('demo [--json]', argv, specs);
    if (values.help) return 0;
    if (positionals.length > 0) throw new CliUsageError(`unexpected argument '${positionals[0]}'`);
    const total = integer('requests', str(values, 'requests'), 12, 10_000)!;
    const json = values.json === true;
    const say = (line: string): void => void (json ? process.stderr : process.stdout).write(`${line}\n`);
    const started = performance.now();
    const children: Child[] = [];
    const spawnChild = (name: string, args: string[]): Child => {
      const proc = spawn(process.execPath, [...process.execArgv, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RSERPOOL_LOG_LEVEL: 'error' } });
      const lines: string[] = [];
      const waiters = new Set<() => void>();
      let buf = '';
      proc.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const parts = buf.split('\n');
        buf = parts.pop()!;
        lines.push(...parts);
        for (const w of waiters) w();
      });
      proc.stderr!.resume();
      const child: Child = {
        name,
        proc,
        lines,
        waitFor: (re, timeoutMs) =>
          new Promise((resolve, reject) => {
            const check = (): void => {
              for (const l of lines) {
                const m = re.exec(l);
                if (m) {
                  clearTimeout(timer);
                  waiters.delete(check);
                  resolve(m);
                  return;
                }
              }
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              reject(new Error(`${name} did not print ${re} within ${timeoutMs} ms`));
            }, timeoutMs);
            waiters.add(check);
            check();
          }),
      };
      children.push(child);
      return child;
    };
    const cleanup = (): void => {
      for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    };
    process.once('exit', cleanup);
    try {
      // 1. Two registrars on 127.0.0.2 and 127.0.0.3 that share one handlespace by ENRP.
      const ports = await freePorts(4);
      const reg = [2, 3].map((h, i) => ({
        asap: `tcp://127.0.0.${h}:${ports[2 * i]}`,
        enrp: `tcp://127.0.0.${h}:${ports[2 * i + 1]}`,
        id: h,
      }));
      const registrars = reg.map((r, i) =>
        spawnChild(`registrar ${hex32(r.id)}`, [
          CLI, 'registrar', '--id', String(r.id), '--asap', r.asap, '--enrp', r.enrp, '--peer', reg[1 - i]!.enrp,
          '--http', 'off', '--announce', 'off', '--enrp-multicast', 'off', '--print-events',
          '--keep-alive-interval', '1s', '--keep-alive-timeout', '1s',
          '--peer-heartbeat', '250ms', '--max-last-heard', '750ms', '--max-no-response', '500ms', '--takeover-expiry', '500ms', '--mentor-discovery', '1s',
        ]),
      );
      await Promise.all(registrars.map((r) => r.waitFor(/^synchronised$/, 10_000)));
      say(`registrars   ${reg.map((r) => `${hex32(r.id)} at ${r.asap}`).join(', ')}  (ENRP between them)`);

      // 2. Three counter PEs, each registered with both registrars as candidates.
      const pes = await Promise.all(
        [1, 2, 3].map(async (n) => {
          const c = spawnChild(`PE ${n}`, [COUNTER_PE, '--listen', 'tcp://127.0.0.1:0', ...reg.flatMap((r) => ['--registrar', r.asap])]);
          const [addr] = await c.waitFor(/^tcp:\/\/\S+$/, 10_000);
          return { child: c, address: addr, port: Number(/:(\d+)$/.exec(addr)![1]) };
        }),
      );
      // Each PE registers with the first registrar of its list, which prints it.
      for (const pe of pes) await registrars[0]!.waitFor(new RegExp(`^pe-registered 0x[0-9a-f]{8} counter tcp://127\\.0\\.0\\.1:${pe.port}$`), 10_000);
      const pu = createPoolUser({ registrars: reg.map((r) => r.asap), cacheTtlMs: 0 }, { logger: silentLogger });
      try {
        const seen: PoolElementParameter[] = await pu.resolve('counter', { items: 8, fresh: true });
        say(`pool         'counter': ${seen.map((p) => `${hex32(p.identifier)} tcp://127.0.0.1:${p.userTransport.port}`).join(', ')}`);

        // 3. A session: requests count up; the serving PE hands out a cookie with each answer.
        const session = await pu.connect('counter', { heartbeatIntervalMs: 250, heartbeatTimeoutMs: 500 });
        const served: { pe: number; from: number; to: number }[] = [];
        let failovers = 0;
        let stallMs = 0;
        let lastAnswerAt = performance.now();
        let killedRegistrar = false;
        session.on('failover', (f) => {
          failovers++;
          say(`failover     ${hex32(f.from.identifier)} -> ${hex32(f.to.identifier)}, last cookie ${f.cookieEchoed ? 'echoed: the count goes on' : 'NOT echoed'}`);
        });
        const { runCounterClient } = (await import(join(here, '..', '..', 'examples', 'counter', `client${ext}`))) as typeof import('../../examples/counter/client.js');
        const values = await runCounterClient(session, {
          count: total,
          requestTimeoutMs: 1000,
          onValue: async (value, seq) => {
            const now = performance.now();
            stallMs = Math.max(stallMs, now - lastAnswerAt);
            lastAnswerAt = now;
            const pe = session.pe.identifier;
            const last = served.at(-1);
            if (last && last.pe === pe) last.to = seq;
            else served.push({ pe, from: seq, to: seq });
            say(`request ${String(seq).padStart(2)}   count ${String(value).padStart(2)}   from PE ${hex32(pe)}`);
            if (seq === Math.floor(total / 3)) {
              const victim = pes.find((p) => p.port === session.pe.userTransport.port)!;
              victim.child.proc.kill('SIGKILL');
              say(`kill -9      PE ${hex32(pe)} (${victim.address}) while it serves the session`);
            }
            if (seq === Math.floor((2 * total) / 3) && !killedRegistrar) {
              killedRegistrar = true;
              registrars[0]!.proc.kill('SIGKILL');
              say(`kill -9      registrar ${hex32(reg[0]!.id)}: the pool user and the PEs carry on with ${hex32(reg[1]!.id)}`);
              await registrars[1]!.waitFor(/^peer-down 0x00000002 /, 5_000).then(() => say(`registrar ${hex32(reg[1]!.id)} noticed: peer ${hex32(reg[0]!.id)} down`));
            }
            // Paced, so a person can watch the failover happen.
            await delay(120);
          },
        });
        const after = await pu.resolve('counter', { items: 8, fresh: true });
        const ok = values.every((v, i) => v === i + 1);
        await session.close();
        say('');
        say(`summary      ${values.length} requests, counts ${ok ? `1..${values.length} with no gap and no repeat` : `WRONG: ${values.join(',')}`}`);
        say(`             ${failovers} failover(s), longest wait for an answer ${Math.round(stallMs)} ms`);
        say(`             served by ${served.map((s) => `${hex32(s.pe)} (requests ${s.from}-${s.to})`).join(', ')}`);
        say(`             registrar ${hex32(reg[1]!.id)} still resolves ${after.length} PEs; ${((performance.now() - started) / 1000).toFixed(1)} s in all`);
        if (json) {
          process.stdout.write(`${JSON.stringify({ countsContinuous: ok, requests: values.length, failovers, stallMs: Math.round(stallMs), remainingPes: after.length, servedBy: served })}\n`);
        }
        return ok && failovers >= 1 ? 0 : 1;
      } finally {
        await pu.close();
      }
    } finally {
      cleanup();
      process.off('exit', cleanup);
    }
  },
};

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}
