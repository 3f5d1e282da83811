/**
 * Counter PE: each request increments the session's counter and is answered
 * with the new value; each answer comes with a state cookie (count and last
 * request seq, HMAC-signed). A PU that fails over echoes the cookie to the
 * next PE, which checks it and resumes the count.
 *
 *   node --import tsx examples/counter/server.ts --listen tcp://127.0.0.1:0
 *   node --import tsx examples/counter/server.ts --listen tcp://127.0.0.1:0 --registrar tcp://127.0.0.1:3863
 *
 * Prints its bound address (one line) on stdout; logs go to stderr.
 */
import { pathToFileURL } from 'node:url';
import { createLogger, type Logger } from '../../lib/logger.js';
import { createSessionServer, userTransportOf, type ServerSession, type SessionServer } from '../../lib/session/index.js';
import { PolicyType } from '../../protocols/parameters/types.js';
import { DEFAULT_SECRET, POOL_HANDLE, decodeRequest, encodeReply, openCookie, parseArgs, sealCookie, type CounterState } from './common.js';

export interface CounterServerInit {
  listen: string;
  /** Shared by every PE of the pool. */
  secret?: string;
}

export async function startCounterServer(init: CounterServerInit, logger: Logger): Promise<SessionServer> {
  const secret = init.secret ?? DEFAULT_SECRET;
  const server = createSessionServer({ listen: init.listen }, { logger });
  server.on('session', (s) => serveSession(s, secret, logger));
  await server.start();
  return server;
}

function serveSession(s: ServerSession, secret: string, logger: Logger): void {
  const state: CounterState = { count: 0, seq: 0 };
  s.on('cookieEcho', (cookie) => {
    const resumed = openCookie(secret, cookie);
    if (!resumed) {
      // A forged or foreign cookie: refuse the takeover; the PU fails over elsewhere.
      logger.warn({ session: s.id }, 'cookie does not verify, closing the session');
      s.abort();
      return;
    }
    Object.assign(state, resumed);
    logger.info({ session: s.id, ...resumed }, 'takeover: resumed from cookie');
  });
  s.on('message', (bytes) => {
    if (s.closed) return;
    const req = decodeRequest(bytes);
    if (!req) {
      logger.warn({ session: s.id }, 'not a counter request, closing the session');
      s.abort();
      return;
    }
    if (req.seq > state.seq) {
      state.count++;
      state.seq = req.seq;
    } else if (req.seq < state.seq) {
      return; // a stale repeat from before the last failover: already answered
    }
    // A repeat of the last seq (the PU re-sent after a failover) is answered, not counted again.
    // The cookie goes out just before the reply, not after: a PU that holds a reply then always
    // holds its cookie too, so a takeover can never count a request twice.
    s.sendCookie(sealCookie(secret, state));
    s.send(encodeReply(req.seq, state.count));
  });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2), ['listen', 'secret', 'registrar']);
  const listen = args.get('listen')?.[0] ?? 'tcp://127.0.0.1:0';
  const secret = args.get('secret')?.[0] ?? process.env.COUNTER_SECRET ?? DEFAULT_SECRET;
  const registrars = (args.get('registrar') ?? []).flatMap((r) => r.split(',')).filter(Boolean);
  const logger = createLogger('counter-pe', process.env.RSERPOOL_LOG_LEVEL ?? 'info');
  const server = await startCounterServer({ listen, secret }, logger);
  process.stdout.write(`${server.address.href}\n`);

  let stopPe: (() => Promise<void>) | undefined;
  if (registrars.length > 0) {
    const { createPoolElement } = await import('../../lib/pool-element/index.js');
    const pe = createPoolElement(
      { handle: POOL_HANDLE, policy: { type: PolicyType.RoundRobin }, userTransport: userTransportOf(server.address), registrars },
      { logger },
    );
    await pe.start();
    logger.info({ identifier: pe.identifier, registrar: pe.registrar }, 'registered');
    stopPe = () => pe.stop();
  }
  // Leaving gently: deregistered first, then each PU gets a business card and a graceful close, and moves on at once.
  const shutdown = async (): Promise<void> => {
    await stopPe?.();
    await server.leave({ handle: POOL_HANDLE });
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    process.stderr.write(`counter server: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
