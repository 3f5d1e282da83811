/** Session test helpers: a fake resolver, PE parameters for session servers, an event log per server. */
import { PolicyType, type PoolElementParameter } from '../../protocols/parameters/types.js';
import { userTransportOf } from '../../lib/session/index.js';
import type { ServerSession, SessionResolver, SessionServer } from '../../lib/session/index.js';
import type { TransportUrl } from '../../lib/transport/types.js';

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
export const str = (b: Uint8Array): string => new TextDecoder().decode(b);

export function peOf(identifier: number, address: TransportUrl): PoolElementParameter {
  return {
    identifier,
    homeRegistrarId: 0,
    registrationLife: 30_000,
    userTransport: userTransportOf(address),
    policy: { type: PolicyType.RoundRobin },
  };
}

export interface FakeResolver extends SessionResolver {
  /** What resolve() answers (a copy each time); set it to change the pool. */
  pool: PoolElementParameter[];
  resolveCalls: number;
  unreachable: number[];
  /** Resolves on the next reportUnreachable(id). */
  reported(id: number): Promise<void>;
}

export function fakeResolver(pool: PoolElementParameter[]): FakeResolver {
  const waiters = new Map<number, (() => void)[]>();
  const r: FakeResolver = {
    pool,
    resolveCalls: 0,
    unreachable: [],
    async resolve() {
      r.resolveCalls++;
      return [...r.pool];
    },
    async reportUnreachable(_handle, identifier) {
      r.unreachable.push(identifier);
      for (const w of waiters.get(identifier) ?? []) w();
      waiters.delete(identifier);
    },
    reported(id) {
      if (r.unreachable.includes(id)) return Promise.resolve();
      return new Promise((resolve) => waiters.set(id, [...(waiters.get(id) ?? []), resolve]));
    },
  };
  return r;
}

export type LogEntry = { session: string; event: 'open' | 'echo' | 'message' | 'card' | 'close'; data?: string };

/**
 * Records every server session event in order, and runs a default
 * application: "ping:x" is answered "pong:x", "cookie:x" makes the PE send
 * the cookie x, anything else is echoed.
 */
export function recordServer(server: SessionServer): { log: LogEntry[]; sessions: ServerSession[] } {
  const log: LogEntry[] = [];
  const sessions: ServerSession[] = [];
  server.on('session', (s) => {
    sessions.push(s);
    log.push({ session: s.id, event: 'open' });
    s.on('cookieEcho', (c) => log.push({ session: s.id, event: 'echo', data: str(c) }));
    s.on('businessCard', (h) => log.push({ session: s.id, event: 'card', data: str(h) }));
    s.on('close', (err) => log.push({ session: s.id, event: 'close', data: err?.code }));
    s.on('message', (m) => {
      const t = str(m);
      log.push({ session: s.id, event: 'message', data: t.length > 64 ? `${t.length} bytes` : t });
      if (s.closed) return;
      if (t.startsWith('ping:')) s.send(text(`pong:${t.slice(5)}`));
      else if (t.startsWith('cookie:')) s.sendCookie(text(t.slice(7)));
      else s.send(m);
    });
  });
  return { log, sessions };
}

/** A deterministic payload of `n` bytes. */
export function pattern(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}
