/**
 * npm run bench -- registrar [--quick] [--json]
 * Handle resolutions/s and registrations/s through one registrar over TCP,
 * and over TLS-PSK (TLS 1.3) with the ratio to TCP, on 127.0.0.1 from 1, 16
 * and 64 client connections, each keeping DEPTH
 * requests outstanding (pipelined; a new one goes out per answer), next to
 * the same handlespace calls made in-process. Clients and registrar share
 * this one process (one event loop), so the TCP figures include the
 * clients' own cost.
 * Registrations cycle over 2,048 PE ids per client: the first pass creates
 * PEs, later passes are re-registrations (updates) - both are full ASAP
 * registrations with checks, keep-alive bookkeeping and a response.
 *
 * http-page and http-status-summary: a registrar holding 100,000 PEs in one
 * pool (least-used, so the summary's mean load reads them all) serves its
 * web page's first load (GET /, /status?summary, the first page of 50 PEs)
 * and the /status summary; the figure is the server time the Server-Timing
 * header reports (JSON included), median and max over the requests. Meanwhile
 * 16 real PEs are supervised with a 250 ms keep-alive and a 250 ms deadline:
 * none may time out, and the event loop's longest stall is reported next to it.
 */
import { createHandlespace } from '../../lib/handlespace/index.js';
import { createRegistrar } from '../../lib/registrar/index.js';
import { randomBytes } from 'node:crypto';
import { createTransports } from '../../lib/transport/index.js';
import type { Connection } from '../../lib/transport/types.js';
import { encodeAsapMessage } from '../../protocols/asap/codec.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { PolicyType, type PoolElementParameter } from '../../protocols/parameters/types.js';
import { opsPerSecond, type BenchContext } from './context.js';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createRegistrarNode } from '../../lib/registrar/index.js';
import { createPoolElement, type PoolElement } from '../../lib/pool-element/index.js';
import { createStatusView } from '../../lib/status/view.js';
import { createEventFeed } from '../../lib/status/feed.js';
import { startStatusServer } from '../../lib/status/http.js';

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

/** GET and the Server-Timing duration, ms. */
async function serverMs(url: string): Promise<number> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  await res.arrayBuffer();
  const m = /app;dur=([0-9.]+)/.exec(res.headers.get('server-timing') ?? '');
  if (!m) throw new Error(`${url}: no Server-Timing`);
  return Number(m[1]);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function httpAtScale(ctx: BenchContext): Promise<void> {
  const PES = 100_000;
  const KEEP_ALIVE_MS = 250;
  const rounds = ctx.quick ? 10 : 40;
  const node = createRegistrarNode({
    id: 0x5eee,
    asap: ['tcp://127.0.0.1:0'],
    announce: false,
    keepAliveIntervalMs: KEEP_ALIVE_MS,
    keepAliveTimeoutMs: KEEP_ALIVE_MS,
  });
  await node.start();
  const hs = node.registrar.handlespace;
  const feed = createEventFeed(node);
  const http = await startStatusServer({ port: 0, view: createStatusView(node), feed, page: true });
  const live: PoolElement[] = [];
  let timeouts = 0;
  node.registrar.on('removed', (_e, reason) => {
    if (reason === 'keep-alive-timeout') timeouts++;
  });
  try {
    // A page is open through the registration storm below, reading the feed as it would.
    const events = await fetch(`${http.url}/events`);
    const reader = events.body!.getReader();
    void (async () => {
      while (!(await reader.read()).done);
    })().catch(() => undefined);
    for (let i = 1; i <= PES; i++) {
      hs.register(
        'big',
        {
          identifier: i,
          homeRegistrarId: 0x77,
          registrationLife: 3_600_000,
          userTransport: { protocol: 'udp', port: 7000 + (i % 1000), addresses: ['127.0.0.1'], transportUse: 0 },
          policy: { type: PolicyType.LeastUsed, load: i % 0xffff },
        },
        { ownerId: 0x77 },
      );
    }
    for (let i = 0; i < 16; i++) {
      const p = createPoolElement({
        handle: 'live',
        policy: { type: PolicyType.RoundRobin },
        userTransport: { protocol: 'udp', port: 8000 + i, addresses: ['127.0.0.1'], transportUse: 0 },
        registrars: [node.registrar.addresses[0]!.href],
        discovery: false,
      });
      await p.start();
      live.push(p);
    }
    ctx.log(`registrar: ${hs.size} PEs (16 supervised, keep-alive ${KEEP_ALIVE_MS} ms), ${rounds} rounds of HTTP`);
    const hex = Buffer.from('big').toString('hex');
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const started = performance.now();
    const page: number[] = [];
    const summary: number[] = [];
    for (let r = 0; r < rounds; r++) {
      page.push(
        (await serverMs(`${http.url}/`)) + (await serverMs(`${http.url}/status?summary`)) + (await serverMs(`${http.url}/status/pool?hex=${hex}&limit=50`)),
      );
      summary.push(await serverMs(`${http.url}/status?summary`));
    }
    // At least 8 keep-alive periods under load, however fast the requests were.
    while (performance.now() - started < 8 * KEEP_ALIVE_MS) summary.push(await serverMs(`${http.url}/status?summary`));
    lag.disable();
    const elapsed = performance.now() - started;
    await reader.cancel();
    const common = {
      pes: hs.size,
      supervised: 16,
      keepAliveMs: KEEP_ALIVE_MS,
      keepAliveTimeouts: timeouts,
      maxLoopStallMs: Math.round(lag.max / 1e6),
      seconds: Math.round(elapsed / 100) / 10,
    };
    ctx.report({
      name: 'http-page',
      value: median(page),
      unit: 'ms',
      max: Math.round(Math.max(...page) * 10) / 10,
      requests: page.length,
      under200: Math.max(...page) < 200,
      ...common,
    });
    ctx.report({
      name: 'http-status-summary',
      value: median(summary),
      unit: 'ms',
      max: Math.round(Math.max(...summary) * 10) / 10,
      requests: summary.length,
      under200: Math.max(...summary) < 200,
      ...common,
    });
  } finally {
    await Promise.all(live.map((p) => p.stop()));
    await http.close();
    feed.stop();
    await node.stop();
  }
}

export async function run(ctx: BenchContext): Promise<void> {
  await httpAtScale(ctx);
  const ms = ctx.quick ? 1_000 : 3_000;
  // One process plays both ends: a TLS-PSK listener and client share the key.
  const transports = createTransports({ tls: { psk: { identity: 'bench', key: randomBytes(32) } } });
  const reg = createRegistrar(
    {
      id: 0x5eed,
      asap: ['tcp://127.0.0.1:0', 'tls://127.0.0.1:0'],
      announce: false,
      maxPoolElementsPerConnection: IDS_PER_CLIENT,
      keepAliveIntervalMs: 600_000,
    },
    { transports },
  );
  await reg.start();
  const urls = { tcp: reg.addresses[0]!.href, tls: reg.addresses[1]!.href };
  const perSecond: Record<string, number> = {};
  for (let i = 1; i <= 10; i++) reg.handlespace.register('bench', { ...pe(i), homeRegistrarId: reg.id }, { ownerId: reg.id });
  const resolveReq = encodeAsapMessage({ type: AsapMessageType.HandleResolution, handle: te('bench'), items: 3 });
  try {
    // TCP and TLS alternate at each client count, so a change in machine load hits both alike.
    for (const op of ['resolve', 'register'] as const) {
      for (const [clients, scheme] of CLIENTS.flatMap((n) => [[n, 'tcp'] as const, [n, 'tls'] as const])) {
        const conns = await Promise.all(Array.from({ length: clients }, () => transports.connect(urls[scheme])));
        const requests = conns.map((_, ci) =>
          op === 'resolve'
            ? [resolveReq]
            : Array.from({ length: IDS_PER_CLIENT }, (_, k) =>
                encodeAsapMessage({ type: AsapMessageType.Registration, handle: te(`reg-${ci}`), element: pe(1 + k) }),
              ),
        );
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        const value = await drive(conns, requests, ms);
        const cpu = process.cpuUsage(cpu0);
        // CPU of this process (registrar and clients) per 1,000 operations.
        const cpuMsPer1k = (cpu.user + cpu.system) / 1000 / ((value * (performance.now() - t0)) / 1000 / 1000);
        ctx.report({ name: op, value, unit: 'op/s', transport: scheme, clients, outstanding: DEPTH, cpuMsPer1k: Math.round(cpuMsPer1k * 100) / 100 });
        perSecond[`${op}/${scheme}/${clients}`] = value;
        for (const c of conns) c.abort();
        ctx.log(`registrar: ${op} ${scheme} x${clients} done (${reg.handlespace.size} PEs)`);
      }
    }
    for (const op of ['resolve', 'register'])
      for (const clients of CLIENTS) {
        const ratio = perSecond[`${op}/tls/${clients}`]! / perSecond[`${op}/tcp/${clients}`]!;
        ctx.report({ name: `${op}-tls-vs-tcp`, value: Math.round(ratio * 1000) / 1000, unit: 'ratio', clients });
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
