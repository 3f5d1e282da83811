/**
 * The tftp bench's boot storm: many machines booting at once. N clients
 * (default 64) start together, each downloading the same random file
 * (default 16 MB): curl at blksize 1468 (one process each) and our client
 * at 1468/16 (one process running N clients, each with sockets of its own:
 * 64 Node processes would measure Node's start-up), against tftpd-hpa,
 * atftpd and our PE on core 0, clients on core 1, and our client against a
 * pool of two of our PEs (both on core 0) that it picks from by the pool's
 * policy through a registrar of ours. Every client past the deadline is
 * killed (counted in `stalls`); every file is checked (size, SHA-256).
 * Figures: `boot-storm` aggregate MB/s (the bytes of the clients that got
 * the right file / the time until the last client ended), p50/p99 seconds
 * per client from the common start (clients that got the right file), ok,
 * failures, stalls, server CPU per GB (both PEs for the pool);
 * `storm-ratio-vs-tftpd-hpa` and `storm-server-cpu-ratio-vs-tftpd-hpa`
 * (same client). Our PEs take up to 256 handshakes from one address (the
 * default 8 is a flood guard; here all "machines" are 127.0.0.1). Our PE
 * also runs with its transfers on worker threads, on every core (the
 * clients' core too): `--workers N,M` (default 1 and the core count), both
 * clients against each; `workers` and `cpus` say which. Env:
 * RSERPOOL_BENCH_TFTP_STORM_CLIENTS (64; --quick 8),
 * RSERPOOL_BENCH_TFTP_STORM_MB (16; --quick 2),
 * RSERPOOL_BENCH_TFTP_STORM_DEADLINE_S (180; --quick 60).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { BenchContext } from './context.js';
import { perGB } from './_tftp-cpu.js';
import {
  CLIENT_CPU,
  checkFile,
  clientArgv,
  collect,
  envInt,
  helper,
  lastLine,
  makeFile,
  pinned,
  quantile,
  settle,
  startAtftpd,
  startPe,
  startRegistrar,
  startTftpdHpa,
  type Registrar,
  type Server,
} from './_tftp-common.js';
import type { TftpTools } from './_tftp-tools.js';

const STORM_FILE = 'storm.bin';

interface StormCase {
  server: 'tftpd-hpa' | 'atftpd' | 'rserpool-pe' | 'rserpool-pool';
  client: 'curl' | 'rserpool';
  /** Our PE's transfer threads (0: in its main thread, on SERVER_CPU). */
  workers: number;
}

const serverKey = (c: Pick<StormCase, 'server' | 'workers'>): string => (c.workers > 0 ? `${c.server}/workers=${c.workers}` : c.server);

interface ClientEnd {
  ms: number;
  error?: string;
  stalled?: boolean;
  /** The PEs that served it (our client). */
  pe?: string;
}

interface StormResult {
  c: StormCase;
  ends: ClientEnd[];
  okMs: number[];
  wallS: number;
  serverCpu: number | undefined;
  clientCpu: number | undefined;
}

const killGroup = (p: ChildProcess): void => {
  try {
    if (p.pid) process.kill(-p.pid, 'SIGKILL');
  } catch {
    // gone
  }
};

/** N curl processes at once, each timed from the common start to its exit. */
async function curlStorm(tools: TftpTools, port: number, n: number, outDir: string, deadlineMs: number): Promise<ClientEnd[]> {
  const start = performance.now();
  return Promise.all(
    Array.from({ length: n }, (_, i) => {
      const argv = clientArgv(tools, { client: 'curl', blksize: 1468, windowsize: 1 }, port, STORM_FILE, join(outDir, `storm-${i}.bin`));
      const proc = pinned(CLIENT_CPU, argv, tools.env);
      const stderr = collect(proc.stderr);
      let stalled = false;
      const timer = setTimeout(
        () => {
          stalled = true;
          killGroup(proc);
        },
        Math.max(0, deadlineMs - (performance.now() - start)),
      );
      return new Promise<ClientEnd>((resolve) => {
        proc.once('error', (err) => resolve({ ms: performance.now() - start, error: err.message }));
        proc.once('close', (code, sig) => {
          clearTimeout(timer);
          const ms = performance.now() - start;
          if (stalled) resolve({ ms, stalled: true, error: `no end within ${deadlineMs / 1000} s` });
          else if (code !== 0) resolve({ ms, error: `exit ${code ?? sig}: ${lastLine(stderr())}` });
          else resolve({ ms });
        });
      });
    }),
  );
}

/** Our client: one process running N downloads at once (_tftp-storm-client.ts). */
async function ourStorm(target: string, n: number, outDir: string, deadlineMs: number): Promise<{ ends: ClientEnd[]; cpu: number | undefined }> {
  const argv = [...helper('_tftp-storm-client'), String(n), outDir, STORM_FILE, '1468', '16', String(deadlineMs), target];
  const proc = pinned(CLIENT_CPU, argv, process.env);
  const stdout = collect(proc.stdout, 1 << 20);
  const stderr = collect(proc.stderr);
  // Its own deadline aborts the downloads; this one is for a helper that hangs anyway.
  const timer = setTimeout(() => killGroup(proc), deadlineMs + 30_000);
  await new Promise<void>((resolve) => proc.once('close', () => resolve()));
  clearTimeout(timer);
  const ends = new Map<number, ClientEnd>();
  let cpu: number | undefined;
  for (const line of stdout().split('\n')) {
    if (!line.startsWith('{')) continue;
    const o = JSON.parse(line) as { i?: number; ms?: number; error?: string; pe?: string; cpu?: number };
    if (o.cpu !== undefined) cpu = o.cpu;
    else if (o.i !== undefined) {
      // Ended by the storm's deadline (its AbortSignal) rather than by a failure of its own.
      const stalled = o.error !== undefined && o.ms! >= deadlineMs - 100;
      ends.set(o.i, { ms: o.ms!, ...(o.error ? { error: o.error } : {}), ...(stalled ? { stalled } : {}), ...(o.pe ? { pe: o.pe } : {}) });
    }
  }
  const said = lastLine(stderr());
  for (let i = 0; i < n; i++) if (!ends.has(i)) ends.set(i, { ms: deadlineMs, error: `the storm client said nothing of it${said ? `: ${said}` : ''}` });
  return { ends: [...ends.values()], cpu };
}

export interface StormSetup {
  tools: TftpTools;
  /** A folder the servers may read (and chroot to). */
  root: string;
  outDir: string;
  tmp: string;
}

export async function bootStorm(ctx: BenchContext, setup: StormSetup): Promise<void> {
  const { tools, root, tmp } = setup;
  const n = envInt('RSERPOOL_BENCH_TFTP_STORM_CLIENTS', ctx.quick ? 8 : 64);
  const bytes = envInt('RSERPOOL_BENCH_TFTP_STORM_MB', ctx.quick ? 2 : 16) * 1_000_000;
  const deadlineMs = envInt('RSERPOOL_BENCH_TFTP_STORM_DEADLINE_S', ctx.quick ? 60 : 180) * 1000;
  const sha256 = makeFile(join(root, STORM_FILE), bytes);
  const outDir = join(setup.outDir, 'storm');
  mkdirSync(outDir, { recursive: true });
  ctx.log(`tftp: boot storm: ${n} clients at once, ${bytes / 1e6} MB each, deadline ${deadlineMs / 1000} s`);

  const started: Array<Server | Registrar> = [];
  const results: StormResult[] = [];
  try {
    const servers = new Map<string, Server[]>();
    let poolTarget = '';
    const start = async (name: string, f: () => Promise<Server[]>): Promise<void> => {
      try {
        const s = await f();
        started.push(...s);
        servers.set(name, s);
      } catch (err) {
        ctx.log(`tftp: boot storm: ${name} did not start, left out: ${(err as Error).message}`);
      }
    };
    if (tools.tftpdHpa) await start('tftpd-hpa', async () => [await startTftpdHpa(tools.tftpdHpa!, root, tools.env)]);
    if (tools.atftpd) await start('atftpd', async () => [await startAtftpd(tools.atftpd!, root, join(tmp, 'atftpd-storm.log'), tools.env)]);
    await start('rserpool-pe', async () => [await startPe(root, { maxPerSource: 256 })]);
    const cores = availableParallelism();
    const workerCounts = [...new Set(ctx.workers ?? [1, cores])];
    for (const workers of workerCounts) {
      await start(serverKey({ server: 'rserpool-pe', workers }), async () => [await startPe(root, { maxPerSource: 256, workers, cpus: `0-${cores - 1}` })]);
    }
    await start('rserpool-pool', async () => {
      const registrar = await startRegistrar();
      started.push(registrar);
      const pool = { registrar: registrar.url, handle: 'bench-storm', secret: 'tftp-storm-bench-secret', maxPerSource: 256 };
      const pes = [await startPe(root, pool), await startPe(root, pool)];
      await registrar.registered(2);
      poolTarget = `${registrar.url}#${pool.handle}`;
      return pes;
    });

    const cases: StormCase[] = [
      ...(['tftpd-hpa', 'atftpd', 'rserpool-pe'] as const).map((server) => ({ server, client: 'curl' as const, workers: 0 })),
      ...(['tftpd-hpa', 'atftpd', 'rserpool-pe', 'rserpool-pool'] as const).map((server) => ({ server, client: 'rserpool' as const, workers: 0 })),
      ...workerCounts.flatMap((workers) => (['curl', 'rserpool'] as const).map((client) => ({ server: 'rserpool-pe' as const, client, workers }))),
    ].filter((c) => servers.has(serverKey(c)) && (c.client !== 'curl' || tools.curl));
    for (const c of cases) {
      const sv = servers.get(serverKey(c))!;
      await settle(sv);
      const cpuOf = (): number | undefined => {
        const each = sv.map((s) => s.cpu());
        return each.every((x) => x !== undefined) ? each.reduce((a, b) => a + b, 0) : undefined;
      };
      const cpu0 = cpuOf();
      const t0 = performance.now();
      let ends: ClientEnd[];
      let clientCpu: number | undefined;
      if (c.client === 'curl') ends = await curlStorm(tools, sv[0]!.port, n, outDir, deadlineMs);
      else {
        const target = c.server === 'rserpool-pool' ? poolTarget : `127.0.0.1:${sv[0]!.port}`;
        ({ ends, cpu: clientCpu } = await ourStorm(target, n, outDir, deadlineMs));
      }
      const wallS = Math.max(...ends.map((e) => e.ms)) / 1000;
      if (!(await settle(sv, 10_000)))
        ctx.log(`tftp: boot storm ${c.client}@${serverKey(c)}: the server still busy 10 s after the last client; CPU read anyway`);
      const cpu1 = cpuOf();
      ctx.log(`tftp: boot storm ${c.client}@${serverKey(c)}: ${((performance.now() - t0) / 1000).toFixed(1)} s; checking ${n} files`);
      for (let i = 0; i < n; i++) {
        const e = ends[i]!;
        const out = join(outDir, `storm-${i}.bin`);
        if (!e.error) {
          const wrong = await checkFile(out, bytes, sha256);
          if (wrong) e.error = wrong;
        }
        rmSync(out, { force: true });
      }
      const okMs = ends.filter((e) => !e.error).map((e) => e.ms);
      const serverCpu = cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined;
      const r: StormResult = { c, ends, okMs, wallS, serverCpu, clientCpu };
      results.push(r);
      report(ctx, r, n, bytes);
    }
    for (const client of ['curl', 'rserpool'] as const) {
      const base = results.find((r) => r.c.client === client && r.c.server === 'tftpd-hpa');
      if (!base) continue;
      for (const ours of results.filter((r) => r.c.client === client && r.c.server.startsWith('rserpool'))) ratios(ctx, ours, base, bytes);
    }
  } finally {
    for (const s of started.reverse()) await s.stop();
    rmSync(join(root, STORM_FILE), { force: true });
    rmSync(outDir, { recursive: true, force: true });
  }
}

const round = (x: number, digits = 3): number => Number(x.toFixed(digits));
const okBytes = (r: StormResult, bytes: number): number => r.okMs.length * bytes;
const aggregate = (r: StormResult, bytes: number): number => (r.wallS > 0 ? okBytes(r, bytes) / r.wallS / 1e6 : 0);

function report(ctx: BenchContext, r: StormResult, n: number, bytes: number): void {
  const stalls = r.ends.filter((e) => e.stalled).length;
  const failures = r.ends.filter((e) => e.error && !e.stalled).length;
  const firstError = r.ends.find((e) => e.error)?.error;
  // Which PE served how many clients (the pool's split).
  const split = new Map<string, number>();
  for (const e of r.ends) if (e.pe && !e.error) split.set(e.pe, (split.get(e.pe) ?? 0) + 1);
  ctx.report({
    name: 'boot-storm',
    value: aggregate(r, bytes),
    unit: 'MB/s',
    server: r.c.server,
    client: r.c.client,
    ...(r.c.server === 'rserpool-pe' ? { workers: r.c.workers, cpus: r.c.workers > 0 ? `0-${availableParallelism() - 1}` : '0' } : {}),
    blksize: 1468,
    windowsize: r.c.client === 'curl' ? 1 : 16,
    clients: n,
    bytes,
    ok: r.okMs.length,
    failures,
    stalls,
    ...(r.okMs.length > 0 ? { p50: round(quantile(r.okMs, 0.5) / 1000), p99: round(quantile(r.okMs, 0.99) / 1000) } : {}),
    wall: round(r.wallS),
    ...(r.serverCpu !== undefined && r.okMs.length > 0 ? { serverCpuPerGB: round(perGB(r.serverCpu, okBytes(r, bytes))) } : {}),
    ...(r.clientCpu !== undefined && r.okMs.length > 0 ? { clientCpuPerGB: round(perGB(r.clientCpu, okBytes(r, bytes))) } : {}),
    ...(split.size > 1 || r.c.server === 'rserpool-pool' ? { split: [...split.values()].join('/') } : {}),
    ...(firstError ? { error: firstError } : {}),
  });
}

function ratios(ctx: BenchContext, ours: StormResult, base: StormResult, bytes: number): void {
  const params = {
    server: ours.c.server,
    client: ours.c.client,
    ...(ours.c.server === 'rserpool-pe' ? { workers: ours.c.workers } : {}),
    baseline: `${base.c.client}+${base.c.server}`,
  };
  if (aggregate(base, bytes) > 0)
    ctx.report({ name: 'storm-ratio-vs-tftpd-hpa', value: aggregate(ours, bytes) / aggregate(base, bytes), unit: 'x', ...params });
  if (ours.serverCpu !== undefined && base.serverCpu && ours.okMs.length > 0 && base.okMs.length > 0) {
    const o = perGB(ours.serverCpu, okBytes(ours, bytes));
    const b = perGB(base.serverCpu, okBytes(base, bytes));
    ctx.report({ name: 'storm-server-cpu-ratio-vs-tftpd-hpa', value: o / b, unit: 'x', ...params, ours: round(o), theirs: round(b) });
  }
}
