/** In-process registrar setups over the memory transport with a ManualClock, and a raw ASAP client. */
import { ManualClock } from '../../lib/clock.js';
import { createMemoryNetwork, createTransports, type Connection, type MemoryNetwork, type TransportSet } from '../../lib/transport/index.js';
import { createRegistrar } from '../../lib/registrar/index.js';
import type { Registrar, RegistrarInit } from '../../lib/registrar/index.js';
import { decodeAsapMessage, encodeAsapMessage } from '../../protocols/asap/codec.js';
import type { AsapMessage } from '../../protocols/asap/types.js';
import { PolicyType, type MemberSelectionPolicy, type PoolElementParameter } from '../../protocols/parameters/types.js';
import { withDeadline } from '../transport/util.js';

export interface Lab {
  clock: ManualClock;
  net: MemoryNetwork;
  /** Transports whose memory:// connections come from host `name`. */
  host(name: string): TransportSet;
  registrar(name: string, init?: Partial<RegistrarInit>): Promise<Registrar>;
  /** Advances the clock in steps, letting I/O run in between. */
  advance(ms: number, stepMs?: number): Promise<void>;
  /** Lets pending memory-network deliveries run (no clock movement). */
  settle(turns?: number): Promise<void>;
  teardown(): Promise<void>;
}

export function createLab(): Lab {
  const clock = new ManualClock(0);
  const net = createMemoryNetwork({}, { clock });
  const stoppers: (() => Promise<void>)[] = [];
  const settle = async (turns = 20): Promise<void> => {
    for (let i = 0; i < turns; i++) await new Promise<void>((r) => setImmediate(r));
  };
  return {
    clock,
    net,
    host: (name) => createTransports({ tcp: false, memory: { network: net, name } }, { clock }),
    async registrar(name, init = {}) {
      const r = createRegistrar(
        { id: 0x1000 + stoppers.length, asap: [`memory://${name}`], announce: false, ...init },
        { clock, transports: createTransports({ tcp: false, memory: { network: net, name } }, { clock }) },
      );
      await r.start();
      stoppers.push(() => r.stop());
      return r;
    },
    async advance(ms, stepMs = 100) {
      let left = ms;
      while (left > 0) {
        const step = Math.min(stepMs, left);
        clock.advance(step);
        left -= step;
        await settle(5);
      }
    },
    settle,
    async teardown() {
      for (const s of stoppers.reverse()) await s();
    },
  };
}

/** Speaks raw ASAP on one connection; collects everything received. */
export class RawClient {
  readonly conn: Connection;
  readonly received: AsapMessage[] = [];
  #waiters: { pred: (m: AsapMessage) => boolean; resolve: (m: AsapMessage) => void }[] = [];

  constructor(conn: Connection) {
    this.conn = conn;
    conn.on('message', (bytes) => {
      const m = decodeAsapMessage(bytes);
      this.received.push(m);
      const w = this.#waiters.find((x) => x.pred(m));
      if (w) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(m);
      }
    });
  }

  static async connect(t: TransportSet, url: string): Promise<RawClient> {
    return new RawClient(await t.connect(url));
  }

  send(m: AsapMessage): void {
    this.conn.send(encodeAsapMessage(m));
  }

  sendBytes(b: Uint8Array): void {
    this.conn.send(b);
  }

  /** The next message (received from now on, or already queued and unclaimed) of `type` passing `pred`. */
  next<T extends AsapMessage['type']>(
    type: T,
    pred: (m: Extract<AsapMessage, { type: T }>) => boolean = () => true,
    ms = 2_000,
  ): Promise<Extract<AsapMessage, { type: T }>> {
    const p = (m: AsapMessage): boolean => m.type === type && pred(m as Extract<AsapMessage, { type: T }>);
    const i = this.received.findIndex(p);
    if (i >= 0) return Promise.resolve(this.received.splice(i, 1)[0] as Extract<AsapMessage, { type: T }>);
    return withDeadline(
      new Promise<Extract<AsapMessage, { type: T }>>((resolve) =>
        this.#waiters.push({
          pred: p,
          resolve: (m) => {
            this.received.splice(this.received.indexOf(m), 1);
            resolve(m as Extract<AsapMessage, { type: T }>);
          },
        }),
      ),
      ms,
      `ASAP message type ${type}`,
    );
  }
}

export const te = (s: string): Uint8Array => new TextEncoder().encode(s);

export function element(
  identifier: number,
  extra: { policy?: MemberSelectionPolicy; life?: number; port?: number; address?: string } = {},
): PoolElementParameter {
  return {
    identifier,
    homeRegistrarId: 0,
    registrationLife: extra.life ?? 30_000,
    userTransport: { protocol: 'tcp', port: extra.port ?? 7000, addresses: [extra.address ?? '127.0.0.1'], transportUse: 0 },
    policy: extra.policy ?? { type: PolicyType.RoundRobin },
  };
}
