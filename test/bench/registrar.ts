/**
 * npm run bench -- registrar [--quick] [--json]
 * Handle resolutions/s and registrations/s through one registrar over TCP on
 * 127.0.0.1 from 1, 16 and 64 client connections, each keeping DEPTH
 * requests outstanding (pipelined; a new one goes out per answer), next to
 * the same handlespace calls made in-process. Clients and registrar share
 * this one process (one event loop), so the TCP figures include the
 * clients' own cost.
 * Registrations cycle over 2,048 PE ids per client: the first pass creates
 * PEs, later passes are re-registrations (updates) - both are full ASAP
 * registrations with checks, keep-alive bookkeeping and a response.
 */
import { createHandlespace } from '../../lib/handlespace/index.js';
import { createRegistrar } from '../../lib/registrar/index.js';
import { createTcpTransport } from '../../lib/transport/tcp.js';
import type { Connection } from '../../lib/transport/types.js';
import { encodeAsapMessage } from '../../protocols/asap/codec.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { PolicyType, type PoolElementParameter } from '../../protocols/parameters/types.js';
import { opsPerSecond, type BenchContext } from './context.js';

const DEPTH = 16;
const IDS_PER_CLIENT = 2048;
const CLIENTS = [1, 16, 64];
const te = (s: string): Uint8Array => new TextEncoder().encode(s);

function pe(identifier: number): PoolElementParameter {
  return {
    identifier,
    homeRegistrarId: 0,
    registrationLife: 600_000,
    userTransport: { protocol: 'tcp', port: 7000 + (identifier % 1000), addresses: ['127.0.0.1'], transportUse: 0 },
    policy: { type: PolicyType.RoundRobin },
  };
}

/** Drives `conns` with pre-encoded requests for ~ms; returns answers per second. */
async function drive(conns: Connection[], requests: Uint8Array[][], ms: number): Promise<number> {
  let answered = 0;
  let running = true;
  const next = conns.map(() => 0);
  const sendOne = (i: number): void => {
    const reqs = requests[i]!;
    conns[i]!.send(reqs[next[i]! % reqs.length]!);
    next[i]!++;
  };
  conns.forEach((c, i) => {
    c.on('message', () => {
      answered++;
      if (running) sendOne(i);
    });
  });
  // warm-up
  conns.forEach((_, i) => {
    for (let d = 0; d < DEPTH; d++) sendOne(i);
  });
  await new Promise((r) => setTimeout(r, Math.min(300, ms / 5)));
  const start = performance.now();
  const base = answered;
  await new Promise((r) => setTimeout(r, ms));
  const n = answered - base;
  const elapsed = performance.now() - start;
  running = false;
  return (n * 1000) / elapsed;
}

export async function run(ctx: BenchContext): Promise<void> {
  const ms = ctx.quick ? 1_000 : 3_000;
  const reg = createRegistrar({
    id: 0x5eed,
    asap: ['tcp://127.0.0.1:0'],
    announce: false,
    maxPoolElementsPerConnection: IDS_PER_CLIENT,
    keepAliveIntervalMs: 600_000,
  });
  await reg.start();
  const url = reg.addresses[0]!.href;
  const tcp = createTcpTransport();
  for (let i = 1; i <= 10; i++) reg.handlespace.register('bench', { ...pe(i), homeRegistrarId: reg.id }, { ownerId: reg.id });
  const resolveReq = encodeAsapMessage({ type: AsapMessageType.HandleResolution, handle: te('bench'), items: 3 });
  try {
    for (const op of ['resolve', 'register'] as const) {
      for (const clients of CLIENTS) {
        const conns = await Promise.all(Array.from({ length: clients }, () => tcp.connect(url)));
        const requests = conns.map((_, ci) =>
          op === 'resolve'
            ? [resolveReq]
            : Array.from({ length: IDS_PER_CLIENT }, (_, k) =>
                encodeAsapMessage({ type: AsapMessageType.Registration, handle: te(`reg-${ci}`), element: pe(1 + k) }),
              ),
        );
        const value = await drive(conns, requests, ms);
        ctx.report({ name: op, value, unit: 'op/s', transport: 'tcp', clients, outstanding: DEPTH });
        for (const c of conns) c.abort();
        ctx.log(`registrar: ${op} tcp x${clients} done (${reg.handlespace.size} PEs)`);
      }
    }
  } finally {
    await reg.stop();
  }

  // The same operations in-process: handlespace calls only.
  const hs = createHandlespace();
  for (let i = 1; i <= 10; i++) hs.register('bench', pe(i), { ownerId: 1 });
  ctx.report({ name: 'resolve', value: opsPerSecond(() => hs.resolve('bench', { items: 3 }), ms), unit: 'op/s', transport: 'in-process', clients: 1 });
  const pes = Array.from({ length: IDS_PER_CLIENT }, (_, k) => pe(1 + k));
  let k = 0;
  ctx.report({
    name: 'register',
    value: opsPerSecond(() => hs.register('reg', pes[k++ % pes.length]!, { ownerId: 1 }), ms),
    unit: 'op/s',
    transport: 'in-process',
    clients: 1,
  });
  hs.close();
}
