/**
 * npm run fuzz -- [--codec | --live] [--count N] [--seconds T] [--seed S] [--target NAME]... [--index I] [--json]
 * --codec feeds N inputs (default 1,000,000, split across the decoders) and
 * exits 1 on any failure, printing what replays it. --live sends mutated
 * messages to a real registrar's ASAP and ENRP ports and a TFTP PE's UDP port
 * for T seconds (default 30, live.ts), then exits 1 unless every process is
 * up and serving. Neither flag: both, codec first. The campaign runs in a worker so
 * that a decoder stuck in a loop (which the in-process 50 ms check never sees
 * return) is stopped by a watchdog here and named by seed, target and index.
 */
import { parseArgs } from 'node:util';
import { randomInt } from 'node:crypto';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fuzzInput, runFuzz, toHex } from './fuzz.js';
import { runLiveFuzz, type LiveFuzzReport } from './live.js';
import { killAll, mib } from '../flood/common.js';
import type { FuzzFailure, FuzzReport } from './fuzz.js';

interface Job {
  count: number;
  seed: number;
  only: string[] | undefined;
  index: number | undefined;
  progress: boolean;
  /** [input sequence number, target slot, index]: written before each input. */
  heartbeat: SharedArrayBuffer;
}

type FromWorker = { type: 'progress'; target: string; done: number; total: number } | { type: 'report'; report: FuzzReport };

/** With no input finishing for this long, the current one is declared stuck. */
const WATCHDOG_MS = 10_000;
const TARGET_SLOTS = ['asap', 'enrp', 'tftp', 'framer'];

if (isMainThread) await main();
else worker(workerData as Job);

function worker(job: Job): void {
  const beat = new Int32Array(job.heartbeat);
  const report = runFuzz({
    count: job.count,
    seed: job.seed,
    ...(job.only ? { only: job.only } : {}),
    ...(job.index === undefined ? {} : { index: job.index }),
    onProgress: job.progress ? (target, done, total) => parentPort?.postMessage({ type: 'progress', target, done, total } satisfies FromWorker) : undefined,
    onInput(target, index) {
      Atomics.store(beat, 1, TARGET_SLOTS.indexOf(target));
      Atomics.store(beat, 2, index);
      Atomics.add(beat, 0, 1);
    },
  });
  parentPort?.postMessage({ type: 'report', report } satisfies FromWorker);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      count: { type: 'string', default: '1000000' },
      seed: { type: 'string' },
      target: { type: 'string', multiple: true },
      index: { type: 'string' },
      json: { type: 'boolean', default: false },
      codec: { type: 'boolean', default: false },
      live: { type: 'boolean', default: false },
      seconds: { type: 'string', default: '30' },
    },
  });
  const both = !values.codec && !values.live;
  const seconds = integer('seconds', values.seconds, 600);
  const count = integer('count', values.count, 0x7fff_ffff);
  const seed = values.seed === undefined ? randomInt(0x1_0000_0000) : integer('seed', values.seed, 0xffff_ffff);
  const index = values.index === undefined ? undefined : integer('index', values.index, 0x7fff_ffff);
  const json = values.json ?? false;
  const unknown = (values.target ?? []).filter((t) => !TARGET_SLOTS.includes(t));
  if (unknown.length > 0) {
    process.stderr.write(`fuzz: unknown target ${unknown.join(', ')} (have: ${TARGET_SLOTS.join(', ')})\n`);
    process.exit(2);
  }
  if (!values.codec && !both) await live(seed, seconds, json);
  if (!json) process.stderr.write(`fuzz: seed ${seed}, ${index === undefined ? `${count} inputs` : `replaying input ${index}`}\n`);

  const heartbeat = new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT);
  const job: Job = { count, seed, only: values.target, index, progress: !json, heartbeat };
  // Loader hooks (tsx) are not inherited by workers on Node 20: a small
  // bootstrap registers them, then loads this file as the worker.
  const bootstrap = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  const w = new Worker(bootstrap, { eval: true, workerData: job });
  const report = await new Promise<FuzzReport | FuzzFailure>((resolve, reject) => {
    const beat = new Int32Array(heartbeat);
    let last = -1;
    let lastChange = Date.now();
    const watchdog = setInterval(() => {
      const seen = Atomics.load(beat, 0);
      if (seen !== last) {
        last = seen;
        lastChange = Date.now();
        return;
      }
      if (Date.now() - lastChange < WATCHDOG_MS) return;
      clearInterval(watchdog);
      const target = TARGET_SLOTS[Atomics.load(beat, 1)] ?? '?';
      const at = Atomics.load(beat, 2);
      void w.terminate();
      const input = fuzzInput(seed, target, at);
      resolve({ seed, target, index: at, kind: 'hang', error: `no return after ${WATCHDOG_MS} ms`, hex: input ? toHex(input) : '' });
    }, 500);
    w.on('message', (m: FromWorker) => {
      if (m.type === 'progress') process.stderr.write(`  ${m.target}: ${m.done}/${m.total}\n`);
      else {
        clearInterval(watchdog);
        resolve(m.report);
      }
    });
    w.on('error', (e) => {
      clearInterval(watchdog);
      reject(e);
    });
  });

  if ('kind' in report) {
    // The watchdog fired: only the stuck input is known.
    if (json) process.stdout.write(`${JSON.stringify({ seed, failures: [report] })}\n`);
    else {
      printFailures([report]);
      process.stdout.write('fuzz: stopped at a stuck input, 1 failure\n');
    }
    process.exit(1);
  }
  if (json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else printReport(report);
  if (report.failures.length > 0) process.exit(1);
  await w.terminate();
  if (both) await live(seed, seconds, json);
  process.exit(0);
}

/** The live campaign; exits with its verdict. */
async function live(seed: number, seconds: number, json: boolean): Promise<never> {
  // Bounded: the campaign, the checks after it, and the processes' start.
  const cap = setTimeout(
    () => {
      process.stderr.write('fuzz: the live campaign overran its bound, stopping\n');
      killAll();
      process.exit(1);
    },
    (seconds + 120) * 1000,
  );
  cap.unref();
  let report: LiveFuzzReport;
  try {
    report = await runLiveFuzz({ seconds, seed, log: json ? undefined : (line) => process.stderr.write(`fuzz: ${line}\n`) });
  } catch (err) {
    process.stderr.write(`fuzz: the live campaign could not run: ${(err as Error).stack ?? String(err)}\n`);
    killAll();
    process.exit(1);
  }
  if (json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else {
    for (const p of report.ports) {
      process.stdout.write(
        `${p.target.padEnd(15)} ${String(p.sent).padStart(8)} sent (${p.bytes} B), ${p.skipped} not sent (non-loopback address), ${p.connections} connections/sockets, ${p.closedByPeer} closed by the peer, ${p.received} B back\n`,
      );
    }
    for (const [role, m] of Object.entries(report.memory))
      process.stdout.write(`${role}: ${mib(m.before)} before, ${mib(m.peak)} peak, ${mib(m.after)} after\n`);
    process.stdout.write(
      `after: register+resolve ${report.after.registerAndResolve.ok ? 'ok' : 'FAILED'} (${report.after.registerAndResolve.detail}); tftp get ${report.after.get.ok ? 'ok' : 'FAILED'} (${report.after.get.detail})\n`,
    );
    for (const p of report.problems) process.stdout.write(`PROBLEM: ${p}\n`);
    process.stdout.write(`fuzz: live, seed ${seed}, ${seconds} s: ${report.ok ? 'every process up and serving' : `${report.problems.length} problem(s)`}\n`);
  }
  process.exit(report.ok ? 0 : 1);
}

function integer(flag: string, text: string, max: number): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0 || n > max) {
    process.stderr.write(`fuzz: --${flag} must be an integer 0..${max}, got '${text}'\n`);
    process.exit(2);
  }
  return n;
}

function printFailures(failures: readonly FuzzFailure[]): void {
  for (const f of failures) {
    process.stdout.write(
      `FAILURE ${f.kind} in ${f.target} (seed ${f.seed}, index ${f.index})\n` +
        `  replay: npm run fuzz -- --seed ${f.seed} --target ${f.target} --index ${f.index}\n` +
        `  error: ${f.error.split('\n').join('\n    ')}\n` +
        `  input (${f.hex.length / 2} bytes): ${f.hex}\n`,
    );
  }
}

function printReport(report: FuzzReport): void {
  printFailures(report.failures);
  process.stdout.write(`seed ${report.seed}\n`);
  process.stdout.write(
    `${'target'.padEnd(8)} ${'inputs'.padStart(9)} ${'decoded'.padStart(9)} ${'refused'.padStart(9)} ${'slowest'.padStart(9)}  refused by code\n`,
  );
  for (const s of report.targets) {
    const codes = Object.entries(s.refusedByCode)
      .sort((a, b) => b[1] - a[1])
      .map(([code, n]) => `${code}=${n}`)
      .join(' ');
    process.stdout.write(
      `${s.target.padEnd(8)} ${String(s.count).padStart(9)} ${String(s.decoded).padStart(9)} ${String(s.refused).padStart(9)} ${`${s.slowestMs.toFixed(1)}ms`.padStart(9)}  ${codes}\n`,
    );
  }
  process.stdout.write(`elapsed ${(report.elapsedMs / 1000).toFixed(1)} s\n`);
  process.stdout.write(`fuzz: ${report.count} inputs, ${report.failures.length} failures\n`);
}
