/** The counter demo (`rserpool demo --counter`): a stateful custom service whose count survives kill -9 through the state cookie. */
import { setTimeout as delay } from 'node:timers/promises';
import { join } from 'node:path';
import { createPoolUser } from '../pool-user/index.js';
import { silentLogger } from '../logger.js';
import type { PoolElementParameter } from '../../protocols/parameters/types.js';
import { hex32 } from './process.js';
import { integer, str, type OptionValues } from './options.js';
import { Children, EXAMPLES, ext, startRegistrars } from './demo-common.js';

const COUNTER_PE = join(EXAMPLES, 'counter', `server${ext}`);

/**
 * A pool on loopback, no configuration: two registrars sharing the
 * handlespace by ENRP, three stateful PEs (the counter example) and a client
 * whose session survives its PE and its registrar being killed with -9.
 */
export const counterDemo = {
  async run(values: OptionValues): Promise<number> {
    const total = integer('requests', str(values, 'requests'), 12, 10_000)!;
    const json = values.json === true;
    const say = (line: string): void => void (json ? process.stderr : process.stdout).write(`${line}\n`);
    const started = performance.now();
    const children = new Children();
    try {
      // 1. Two registrars on 127.0.0.2 and 127.0.0.3 that share one handlespace by ENRP.
      const reg = await startRegistrars(children);
      const registrars = reg.map((r) => r.child);
      say(`registrars   ${reg.map((r) => `${hex32(r.id)} at ${r.asap}`).join(', ')}  (ENRP between them)`);

      // 2. Three counter PEs, each registered with both registrars as candidates.
      const pes = await Promise.all(
        [1, 2, 3].map(async (n) => {
          const c = children.spawn(`PE ${n}`, [COUNTER_PE, '--listen', 'tcp://127.0.0.1:0', ...reg.flatMap((r) => ['--registrar', r.asap])]);
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
          say(
            `failover     ${hex32(f.from.identifier)} -> ${hex32(f.to.identifier)}, last cookie ${f.cookieEchoed ? 'echoed: the count goes on' : 'NOT echoed'}`,
          );
        });
        const { runCounterClient } = (await import(join(EXAMPLES, 'counter', `client${ext}`))) as typeof import('../../examples/counter/client.js');
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
              await registrars[1]!
                .waitFor(/^peer-down 0x00000002 /, 5_000)
                .then(() => say(`registrar ${hex32(reg[1]!.id)} noticed: peer ${hex32(reg[0]!.id)} down`));
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
          process.stdout.write(
            `${JSON.stringify({ countsContinuous: ok, requests: values.length, failovers, stallMs: Math.round(stallMs), remainingPes: after.length, servedBy: served })}\n`,
          );
        }
        return ok && failovers >= 1 ? 0 : 1;
      } finally {
        await pu.close();
      }
    } finally {
      await children.close();
    }
  },
};
