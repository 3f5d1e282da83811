/**
 * The chaos run: registrars, sidecar PEs and TFTP PEs as real processes, a
 * download loop checking SHA-256, a random fault every few seconds, and an
 * observer comparing each registrar's view with the processes alive.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTftpClient } from '../../lib/tftp/client/index.js';
import { killHard, signal, spawnCli, terminate, type ManagedProc } from './procs.js';
import { netFaults, type NetFaults } from './net.js';

export interface ChaosOptions {
  seed: number;
  /** Length of the fault phase. */
  seconds: number;
  registrars: number;
  sidecars: number;
  tftpPes: number;
  /** Mean time between faults. */
  faultEveryMs: number;
  /** Loss probability in the second half of the fault phase (needs `net`). */
  loss: number;
  /** iptables in the run's own namespace: loss and partitions. */
  net: boolean;
  /** Registrars run under their own uid (for partitions); needs root. */
  uids: boolean;
  /** The longest wait for convergence after the last fault. */
  convergeLimitMs: number;
  log: (line: string) => void;
}

export type FaultKind = 'kill-registrar' | 'pause-registrar' | 'kill-pe' | 'pause-pe' | 'partition' | 'burst';

export interface ChaosReport {
  seed: number;
  seconds: number;
  netns: boolean;
  loss: number;
  faults: Record<FaultKind, number>;
  downloads: { ok: number; failed: number; shaMismatch: number };
  worstStallMs: number;
  convergenceMs: number | null;
  lost: number;
  stale: number;
  duplicated: number;
  diedByThemselves: number;
  notExitingOnSigterm: number;
  /** Longest time a running PE was listed at no registrar that answered. */
  maxMissingMs: number;
  /** Longest time from a PE's restart (spawn) to its first registration. */
  slowestRestartMs: number;
  details: string[];
}

/** mulberry32: a small seeded PRNG, so a seed replays the same fault schedule. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** One registrar's view: the PEs it lists per pool handle, and whether it has the handlespace yet. */
export interface RegistrarView {
  synchronised: boolean;
  elements: { handle: string; identifier: number; transport: string }[];
}

/** Reads a registrar's view from its status endpoint; kept apart so a change of /status touches only this. */
export async function readView(statusUrl: string, timeoutMs: number): Promise<RegistrarView | undefined> {
  try {
    // The chaos pools are small: one page of each holds all of its PEs.
    const res = await fetch(`${statusUrl}?limit=1000`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return undefined;
    const s = (await res.json()) as {
      synchronised: boolean;
      pools: { handle: string; elements?: { identifier: number; userTransport: { protocol: string; port: number; addresses: string[] } }[] }[];
    };
    const elements: RegistrarView['elements'] = [];
    for (const pool of s.pools) {
      for (const e of pool.elements ?? []) {
        elements.push({ handle: pool.handle, identifier: e.identifier, transport: `${e.userTransport.addresses.join(',')}:${e.userTransport.port}` });
      }
    }
    return { synchronised: s.synchronised, elements };
  } catch {
    return undefined;
  }
}

interface Registrar {
  index: number;
  asap: string;
  enrpPort: number;
  enrp: string;
  status: string;
  uid: number | undefined;
  proc: ManagedProc;
  partitioned: boolean;
  busyUntil: number;
}

interface Pe {
  name: string;
  handle: string;
  identifier: number;
  transport: string;
  args: string[];
  ready: RegExp;
  proc: ManagedProc;
  busyUntil: number;
  /** The last observation that found it at some registrar. */
  lastSeen: number;
}

const START_GRACE_MS = 5_000;

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const random = prng(o.seed);
  const t0 = performance.now();
  const now = (): number => performance.now() - t0;
  const between = (lo: number, hi: number): number => lo + random() * (hi - lo);
  const pick = <T>(xs: T[]): T | undefined => (xs.length === 0 ? undefined : xs[Math.floor(random() * xs.length)]);
  const details: string[] = [];
  let diedByThemselves = 0;
  const onUnexpectedExit = (p: ManagedProc, status: number | string): void => {
    diedByThemselves++;
    details.push(`${p.name} exited by itself (${status}) at ${Math.round(now())} ms: ${p.stderrTail.slice(-3).join(' | ')}`);
    o.log(`!! ${p.name} exited by itself (${status})`);
  };
  const net: NetFaults = netFaults(o.net);
  const dir = mkdtempSync(join(tmpdir(), 'rserpool-chaos-'));
  const file = randomBytes(1 << 20);
  writeFileSync(join(dir, 'blob.bin'), file);
  const fileSha = createHash('sha256').update(file).digest('hex');
  const secret = randomBytes(32).toString('hex');

  // --- the pool ------------------------------------------------------------
  const registrars: Registrar[] = [];
  for (let i = 0; i < o.registrars; i++) {
    const host = `127.0.1.${i + 1}`;
    const [a, e, h] = [await freePort(host), await freePort(host), await freePort(host)];
    registrars.push({
      index: i,
      asap: `tcp://${host}:${a}`,
      enrpPort: e,
      enrp: `tcp://${host}:${e}`,
      status: `http://${host}:${h}/status`,
      uid: o.uids ? 61_001 + i : undefined,
      proc: undefined as unknown as ManagedProc,
      partitioned: false,
      busyUntil: 0,
    });
  }
  const asapUrls = registrars.map((r) => r.asap);
  const registrarArgs = (r: Registrar): string[] => [
    'registrar',
    '--asap',
    r.asap,
    '--enrp',
    r.enrp,
    ...registrars.filter((x) => x !== r).flatMap((x) => ['--peer', x.enrp]),
    '--http',
    new URL(r.status).host,
    '--announce',
    'off',
    '--enrp-multicast',
    'off',
    '--keep-alive-interval',
    '1s',
    '--keep-alive-timeout',
    '1s',
    '--peer-heartbeat',
    '1s',
    '--max-last-heard',
    '2s',
    '--max-no-response',
    '1s',
    '--takeover-expiry',
    '1s',
    '--mentor-discovery',
    '1s',
    '--print-events',
  ];
  const startRegistrar = (r: Registrar): void => {
    r.proc = spawnCli({ name: `registrar${r.index + 1}`, args: registrarArgs(r), ready: /^registrar 0x/, uid: r.uid, now, onUnexpectedExit });
  };
  const pes: Pe[] = [];
  for (let i = 0; i < o.sidecars; i++) {
    const host = `127.0.2.${i + 1}`;
    const identifier = 0x1000 + i + 1;
    const transport = `${host}:7000`;
    pes.push({
      name: `sidecar${i + 1}`,
      handle: 'side',
      identifier,
      transport,
      args: [
        'register',
        '--handle',
        'side',
        '--transport',
        `udp://${transport}`,
        ...asapUrls.flatMap((u) => ['--registrar', u]),
        '--identifier',
        String(identifier),
        '--life',
        '10s',
        '--asap-listen',
        `tcp://${host}:0`,
      ],
      ready: /^registered 0x/,
      proc: undefined as unknown as ManagedProc,
      busyUntil: 0,
      lastSeen: 0,
    });
  }
  for (let i = 0; i < o.tftpPes; i++) {
    const host = `127.0.3.${i + 1}`;
    const port = await freePort(host);
    const identifier = 0x2000 + i + 1;
    pes.push({
      name: `tftp${i + 1}`,
      handle: 'files',
      identifier,
      transport: `${host}:${port}`,
      args: [
        'tftp',
        'serve',
        '--root',
        dir,
        '--handle',
        'files',
        '--host',
        host,
        '--port',
        String(port),
        ...asapUrls.flatMap((u) => ['--registrar', u]),
        '--identifier',
        String(identifier),
        '--secret',
        secret,
        '--life',
        '10s',
      ],
      ready: /^serving /,
      proc: undefined as unknown as ManagedProc,
      busyUntil: 0,
      lastSeen: 0,
    });
  }
  const startPe = (pe: Pe): void => {
    pe.proc = spawnCli({ name: pe.name, args: pe.args, ready: pe.ready, now, onUnexpectedExit });
    pe.lastSeen = 0;
  };

  const report: ChaosReport = {
    seed: o.seed,
    seconds: o.seconds,
    netns: o.net,
    loss: o.net ? o.loss : 0,
    faults: { 'kill-registrar': 0, 'pause-registrar': 0, 'kill-pe': 0, 'pause-pe': 0, partition: 0, burst: 0 },
    downloads: { ok: 0, failed: 0, shaMismatch: 0 },
    worstStallMs: 0,
    convergenceMs: null,
    lost: 0,
    stale: 0,
    duplicated: 0,
    diedByThemselves: 0,
    notExitingOnSigterm: 0,
    maxMissingMs: 0,
    slowestRestartMs: 0,
    details,
  };

  const everything = (): ManagedProc[] => [...registrars.map((r) => r.proc), ...pes.map((p) => p.proc)].filter(Boolean);
  try {
    for (const r of registrars) startRegistrar(r);
    await waitUntil(() => registrars.every((r) => r.proc.state === 'running'), 30_000, 'registrars up');
    for (const pe of pes) startPe(pe);
    await waitUntil(() => pes.every((p) => p.proc.state === 'running'), 30_000, 'PEs up');
    o.log(`pool up at ${Math.round(now())} ms: ${registrars.length} registrars, ${pes.length} PEs`);

    // --- the observer ------------------------------------------------------
    let observing = true;
    /** Each fault from its start until its process runs again or the partition heals, for explaining a PE missing meanwhile. */
    const spans: { from: number; to: number | undefined; what: string }[] = [];
    const during = (from: number, to: number): string => {
      const active = spans.filter((f) => f.from <= to && (f.to ?? Infinity) >= from);
      return active.length === 0 ? 'no fault' : active.map((f) => `${f.what} ${Math.round(f.from)}-${f.to === undefined ? '' : Math.round(f.to)}`).join(', ');
    };
    const missingEpisodes = new Map<string, string>();
    /** Per PE, since when it has been missing (undefined: listed, or not due). */
    const missingSince = new Map<Pe, number>();
    let lastViews: (RegistrarView | undefined)[] = [];
    const observe = async (): Promise<void> => {
      const views = await Promise.all(registrars.map((r) => (r.proc.state === 'running' ? readView(r.status, 500) : Promise.resolve(undefined))));
      lastViews = views;
      const t = now();
      const answered = views.filter((v): v is RegistrarView => v !== undefined);
      if (answered.length === 0) return;
      for (const pe of pes) {
        const p = pe.proc;
        // Running: registered since its (re)start and not paused. A (re)started PE not registered yet is
        // not running (its start-up time is slowestRestartMs); a paused one is not, until SIGCONT.
        const due = p.state === 'running' ? p.upSince! : undefined;
        const seen = answered.some((v) => v.elements.some((e) => e.handle === pe.handle && e.identifier === pe.identifier));
        if (seen) pe.lastSeen = t;
        if (due === undefined || due > t || seen) {
          const since = missingSince.get(pe);
          missingSince.delete(pe);
          // An episode over half the limit is worth a line: which PE, when, what faults were on.
          if (since !== undefined && seen && t - since > 1000) {
            const where = registrars.filter((_, i) => views[i]?.elements.some((e) => e.handle === pe.handle && e.identifier === pe.identifier));
            o.log(
              `${pe.name} missing at every registrar ${Math.round(since)}-${Math.round(t)} (${Math.round(t - since)} ms), now at ${where.map((r) => r.proc.name).join(',')}; faults: ${during(since, t)}`,
            );
          }
          continue;
        }
        // Missing since it was due or last seen, whichever is later.
        const since = Math.max(due, pe.lastSeen);
        missingSince.set(pe, since);
        const missing = t - since;
        report.maxMissingMs = Math.max(report.maxMissingMs, missing);
        if (missing > 2000)
          missingEpisodes.set(`${pe.name} missing at every registrar from ${Math.round(since)} ms`, `${Math.round(missing)} ms; faults: ${during(since, t)}`);
      }
    };
    const observer = (async () => {
      while (observing) {
        await observe();
        await sleep(200);
      }
    })();

    // --- the download loop -------------------------------------------------
    let downloading = true;
    const client = createTftpClient({ registrars: asapUrls, resolveTimeoutMs: 500 });
    const downloads = (async () => {
      while (downloading) {
        const chunks: Buffer[] = [];
        const sink = new (await import('node:stream')).Writable({
          write(chunk: Buffer, _enc, cb) {
            chunks.push(chunk);
            cb();
          },
        });
        try {
          const r = await client.get('files', 'blob.bin', sink, {
            signal: AbortSignal.timeout(30_000),
            // A long stall is worth a line: from which PE, why, and the faults then.
            onFailover: (f) => {
              if (f.stallMs <= 500) return;
              const t = now();
              const name = (id: number | undefined): string => pes.find((pe) => pe.identifier === id)?.name ?? `${id}`;
              o.log(
                `stall ${Math.round(f.stallMs)} ms at ${Math.round(t)}: ${name(f.from.identifier)} -> ${name(f.to.identifier)} (${f.reason}); faults: ${during(t - f.stallMs, t)}`,
              );
            },
          });
          const sha = createHash('sha256').update(Buffer.concat(chunks)).digest('hex');
          if (sha !== fileSha || r.sha256 !== fileSha) {
            report.downloads.shaMismatch++;
            details.push(`download SHA mismatch at ${Math.round(now())} ms`);
          } else report.downloads.ok++;
          report.worstStallMs = Math.max(report.worstStallMs, r.stallMs);
        } catch (err) {
          report.downloads.failed++;
          details.push(`download failed at ${Math.round(now())} ms: ${(err as Error).message}; faults in the 2 s before: ${during(now() - 2000, now())}`);
          o.log(`!! download failed: ${(err as Error).message}`);
          await sleep(100);
        }
      }
    })();

    // --- the faults --------------------------------------------------------
    const pending: Promise<void>[] = [];
    let lastFaultEnd = 0;
    const ended = (): void => {
      lastFaultEnd = Math.max(lastFaultEnd, now());
    };
    const healthyRegistrars = (): Registrar[] => registrars.filter((r) => r.proc.state === 'running' && !r.partitioned && r.busyUntil <= now());
    const idlePes = (): Pe[] => pes.filter((p) => p.proc.state === 'running' && p.busyUntil <= now());
    const spareTftp = (): boolean => pes.filter((p) => p.handle === 'files' && p.proc.state === 'running' && p.busyUntil <= now()).length >= 2;
    const faultPhaseEnd = now() + o.seconds * 1000;
    const lossAt = now() + (o.seconds * 1000) / 2;
    let lossOn = false;
    let lossSpan: (typeof spans)[number] | undefined;

    const fault = (kind: Exclude<FaultKind, 'burst'>): boolean => {
      const t = now();
      if (kind === 'kill-registrar' || kind === 'pause-registrar' || kind === 'partition') {
        // At least one other registrar stays whole.
        const healthy = healthyRegistrars();
        if (healthy.length < 2) return false;
        const r = pick(healthy)!;
        if (kind === 'kill-registrar') {
          const downMs = between(300, 2000);
          r.busyUntil = t + downMs + 3000;
          o.log(`${Math.round(t)} kill -9 ${r.proc.name}, restart in ${Math.round(downMs)} ms`);
          const span = { from: t, to: undefined as number | undefined, what: `kill -9 ${r.proc.name}` };
          spans.push(span);
          pending.push(
            (async () => {
              await killHard(r.proc);
              await sleep(downMs);
              startRegistrar(r);
              await waitUntil(() => r.proc.state !== 'starting', 30_000, `${r.proc.name} restart`).catch(() => {});
              span.to = now();
              ended();
            })(),
          );
        } else if (kind === 'pause-registrar') {
          const pauseMs = between(4500, 7000);
          r.busyUntil = t + pauseMs + 3000;
          o.log(`${Math.round(t)} SIGSTOP ${r.proc.name} for ${Math.round(pauseMs)} ms`);
          r.proc.state = 'paused';
          signal(r.proc, 'SIGSTOP');
          const span = { from: t, to: undefined as number | undefined, what: `SIGSTOP ${r.proc.name}` };
          spans.push(span);
          pending.push(
            (async () => {
              await sleep(pauseMs);
              if (r.proc.state === 'paused') {
                signal(r.proc, 'SIGCONT');
                r.proc.state = 'running';
              }
              span.to = now();
              ended();
            })(),
          );
        } else {
          if (!net.enabled || r.uid === undefined) return false;
          const cutMs = between(4000, 7000);
          r.busyUntil = t + cutMs + 3000;
          o.log(`${Math.round(t)} partition ${r.proc.name} for ${Math.round(cutMs)} ms`);
          r.partitioned = true;
          net.partition(
            r.uid,
            r.enrpPort,
            registrars.filter((x) => x !== r).map((x) => x.enrpPort),
          );
          const span = { from: t, to: undefined as number | undefined, what: `partition ${r.proc.name}` };
          spans.push(span);
          pending.push(
            (async () => {
              await sleep(cutMs);
              net.heal(r.uid);
              r.partitioned = false;
              span.to = now();
              ended();
            })(),
          );
        }
        report.faults[kind]++;
        return true;
      }
      const candidates = idlePes().filter((p) => p.handle !== 'files' || spareTftp());
      const pe = pick(candidates);
      if (!pe) return false;
      if (kind === 'kill-pe') {
        const downMs = between(100, 1500);
        pe.busyUntil = t + downMs + START_GRACE_MS;
        o.log(`${Math.round(t)} kill -9 ${pe.name}, restart in ${Math.round(downMs)} ms`);
        const span = { from: t, to: undefined as number | undefined, what: `kill -9 ${pe.name}` };
        spans.push(span);
        pending.push(
          (async () => {
            await killHard(pe.proc);
            await sleep(downMs);
            startPe(pe);
            await waitUntil(() => pe.proc.state !== 'starting', 30_000, `${pe.name} restart`).catch(() => {});
            span.to = now();
            if (pe.proc.upSince !== undefined) report.slowestRestartMs = Math.max(report.slowestRestartMs, pe.proc.upSince - pe.proc.spawnedAt);
            ended();
          })(),
        );
      } else {
        const pauseMs = between(2500, 4000);
        pe.busyUntil = t + pauseMs + 2000;
        o.log(`${Math.round(t)} SIGSTOP ${pe.name} for ${Math.round(pauseMs)} ms`);
        pe.proc.state = 'paused';
        signal(pe.proc, 'SIGSTOP');
        const span = { from: t, to: undefined as number | undefined, what: `SIGSTOP ${pe.name}` };
        spans.push(span);
        pending.push(
          (async () => {
            await sleep(pauseMs);
            if (pe.proc.state === 'paused') {
              signal(pe.proc, 'SIGCONT');
              pe.proc.state = 'running';
              pe.proc.upSince = now();
            }
            span.to = now();
            ended();
          })(),
        );
      }
      report.faults[kind]++;
      return true;
    };

    const single: Exclude<FaultKind, 'burst'>[] = ['kill-registrar', 'pause-registrar', 'kill-pe', 'pause-pe', 'partition', 'kill-pe', 'pause-pe'];
    while (now() < faultPhaseEnd) {
      if (!lossOn && o.net && o.loss > 0 && now() >= lossAt) {
        net.setLoss(o.loss);
        lossOn = true;
        o.log(`${Math.round(now())} loss ${o.loss * 100} % on`);
        spans.push({ from: now(), to: undefined, what: `loss ${o.loss * 100} %` });
        lossSpan = spans.at(-1);
      }
      if (random() < 0.2) {
        const n = 2 + Math.floor(random() * 2);
        let done = 0;
        for (let i = 0; i < n; i++) {
          if (fault(pick(single)!)) done++;
          await sleep(between(50, 300));
        }
        if (done > 1) report.faults.burst++;
      } else fault(pick(single)!);
      ended();
      await sleep(between(0.5, 1.5) * o.faultEveryMs);
    }
    await Promise.all(pending);
    if (lossOn) {
      net.setLoss(0);
      o.log(`${Math.round(now())} loss off`);
      if (lossSpan) lossSpan.to = now();
    }
    ended();
    o.log(`faults over at ${Math.round(lastFaultEnd)} ms; waiting for convergence`);

    // --- convergence -------------------------------------------------------
    const exact = (): string[] => {
      const wrong: string[] = [];
      registrars.forEach((r, i) => {
        const v = lastViews[i];
        if (!v) return void wrong.push(`${r.proc.name}: no view`);
        if (!v.synchronised) wrong.push(`${r.proc.name}: not synchronised`);
        for (const pe of pes) {
          const listed = v.elements.filter((e) => e.handle === pe.handle && e.identifier === pe.identifier);
          const alive = pe.proc.state === 'running';
          if (alive && listed.length === 0) wrong.push(`${r.proc.name}: lost ${pe.name}`);
          if (!alive && listed.length > 0) wrong.push(`${r.proc.name}: stale ${pe.name}`);
          if (listed.length > 1) wrong.push(`${r.proc.name}: duplicated ${pe.name}`);
          if (listed.some((e) => e.transport !== pe.transport)) wrong.push(`${r.proc.name}: stale transport of ${pe.name}`);
        }
        for (const e of v.elements) {
          if (!pes.some((pe) => pe.handle === e.handle && pe.identifier === e.identifier))
            wrong.push(`${r.proc.name}: stale unknown ${e.handle}/${e.identifier}`);
        }
      });
      return wrong;
    };
    let wrong: string[] = ['not observed yet'];
    const convergeBy = now() + o.convergeLimitMs;
    while (now() < convergeBy) {
      await observe();
      wrong = exact();
      if (wrong.length === 0 && pes.every((p) => p.proc.state === 'running')) {
        report.convergenceMs = Math.round(now() - lastFaultEnd);
        break;
      }
      await sleep(100);
    }
    if (report.convergenceMs === null) details.push(`not converged after ${o.convergeLimitMs} ms: ${wrong.join('; ')}`);
    for (const w of wrong) {
      if (/: lost /.test(w) || /not synchronised|no view/.test(w)) report.lost++;
      else if (/: stale /.test(w)) report.stale++;
      else if (/: duplicated /.test(w)) report.duplicated++;
    }
    observing = false;
    downloading = false;
    for (const [what, how] of missingEpisodes) details.push(`${what} for ${how}`);
    await observer;
    await downloads;
    await client.stop();
  } finally {
    net.heal();
    net.setLoss(0);
    for (const r of registrars) if (r.proc?.state === 'paused') signal(r.proc, 'SIGCONT');
    for (const p of pes) if (p.proc?.state === 'paused') signal(p.proc, 'SIGCONT');
    // Every process must exit within 2 s of SIGTERM, restarted or not.
    const took = await Promise.all(everything().map(async (p) => [p, await terminate(p, 2000, now)] as const));
    for (const [p, ms] of took) {
      if (ms === undefined) {
        report.notExitingOnSigterm++;
        details.push(`${p.name} did not exit within 2 s of SIGTERM: ${p.stderrTail.slice(-3).join(' | ')}`);
      }
    }
    net.close();
    rmSync(dir, { recursive: true, force: true });
  }
  report.diedByThemselves = diedByThemselves;
  report.worstStallMs = Math.round(report.worstStallMs);
  report.maxMissingMs = Math.round(report.maxMissingMs);
  report.slowestRestartMs = Math.round(report.slowestRestartMs);
  return report;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitUntil(cond: () => boolean, limitMs: number, what: string): Promise<void> {
  const deadline = performance.now() + limitMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`chaos: ${what} not within ${limitMs} ms`);
    await sleep(50);
  }
}
