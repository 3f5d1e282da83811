/**
 * Counter PU: sends N increments one after another and prints each value.
 * Kill the PE it talks to and it fails over to another, whose count goes on
 * from the cookie.
 *
 *   node --import tsx examples/counter/client.ts --pe tcp://127.0.0.1:4001 --pe tcp://127.0.0.1:4002 --count 20
 *   COUNTER_PES=tcp://127.0.0.1:4001,tcp://127.0.0.1:4002 node --import tsx examples/counter/client.ts
 *   node --import tsx examples/counter/client.ts --registrar tcp://127.0.0.1:3863
 */
import { pathToFileURL } from 'node:url';
import { createLogger } from '../../lib/logger.js';
import { openSession, type Session, type SessionResolver } from '../../lib/session/index.js';
import { POOL_HANDLE, decodeReply, encodeRequest, parseArgs, staticResolver } from './common.js';

export interface CounterClientOptions {
  /** Increments to send. */
  count: number;
  /** No reply within this long: ask the session to fail over, then send the request again. Default 5,000 ms. */
  requestTimeoutMs?: number;
  /** Called with each value before the next request goes out. */
  onValue?: (value: number, seq: number) => void | Promise<void>;
}

/**
 * Requests are numbered; after a failover the outstanding one is sent again
 * (the session delivers at most once) and the PE answers a repeat without
 * counting it twice, so the values go on without a gap or a repeat.
 */
export async function runCounterClient(session: Session, opts: CounterClientOptions): Promise<number[]> {
  const values: number[] = [];
  for (let seq = 1; seq <= opts.count; seq++) {
    const value = await request(session, seq, opts.requestTimeoutMs ?? 5_000);
    values.push(value);
    await opts.onValue?.(value, seq);
  }
  return values;
}

function request(session: Session, seq: number, timeoutMs: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = (): void => {
      clearTimeout(timer);
      session.off('message', onMessage);
      session.off('failover', send);
      session.off('close', onClose);
    };
    const onMessage = (bytes: Uint8Array): void => {
      const reply = decodeReply(bytes);
      if (reply?.seq !== seq) return; // a late answer to a repeat
      finish();
      resolve(reply.value);
    };
    const onClose = (err: Error | undefined): void => {
      finish();
      reject(err ?? new Error('the session was closed'));
    };
    function send(): void {
      clearTimeout(timer);
      try {
        session.send(encodeRequest(seq));
      } catch (err) {
        finish();
        reject(err as Error);
        return;
      }
      timer = setTimeout(() => {
        // The PE may be alive but stuck: leave it; the failover event sends the request again.
        session.failover(`request ${seq} timed out`).catch(() => {});
      }, timeoutMs);
    }
    session.on('message', onMessage);
    session.on('failover', send);
    session.on('close', onClose);
    send();
  });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2), ['count', 'interval', 'registrar', 'pe']);
  const count = Number(args.get('count')?.[0] ?? 10);
  const intervalMs = Number(args.get('interval')?.[0] ?? 500);
  const registrars = (args.get('registrar') ?? []).flatMap((r) => r.split(',')).filter(Boolean);
  const pes = [...(args.get('pe') ?? []), ...(process.env.COUNTER_PES ?? '').split(',')].flatMap((p) => p.split(',')).filter(Boolean);
  const logger = createLogger('counter-pu');

  let resolver: SessionResolver;
  let closeResolver = async (): Promise<void> => {};
  if (registrars.length > 0) {
    const { createPoolUser } = await import('../../lib/pool-user/index.js');
    const pu = createPoolUser({ registrars }, { logger });
    resolver = pu;
    closeResolver = () => pu.close();
  } else if (pes.length > 0) {
    resolver = staticResolver(pes);
  } else {
    throw new Error('give the PEs (--pe URL, repeatable, or COUNTER_PES) or a registrar (--registrar URL)');
  }

  const session = await openSession({ handle: POOL_HANDLE, resolver }, { logger });
  session.on('failover', ({ from, to, cookieEchoed, reason }) => {
    process.stderr.write(`failover: PE ${from.identifier} -> PE ${to.identifier} (${reason.code}; cookie echoed: ${cookieEchoed})\n`);
  });
  try {
    await runCounterClient(session, {
      count,
      onValue: async (value, seq) => {
        process.stdout.write(`${seq}: ${value} (PE ${session.pe.identifier})\n`);
        if (intervalMs > 0 && seq < count) await new Promise((r) => setTimeout(r, intervalMs));
      },
    });
  } finally {
    await session.close();
    await closeResolver();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    process.stderr.write(`counter client: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}\n`);
    process.exit(1);
  });
}
