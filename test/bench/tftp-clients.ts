/**
 * npm run bench -- tftp-clients [--runs N] [--quick] [--json]
 * Reliability of real clients: every client of the tftp bench at each of
 * its settings (curl at blksize 1468 and 65464, tftp-hpa at 512, atftp and
 * our client at 1468/8, 1468/32, 8192/16, 65464/4) downloads a small random
 * file N times (default 30; --quick 3) from our PE, and N times through
 * `rserpool tftp gateway` in front of it (a registrar and the PE registered
 * in a pool); server side on core 0, clients on core 1. Each run is checked
 * byte-identical (size, SHA-256). Figures: `failed-runs` per client,
 * setting and target (unit runs; want 0) with `aborts` (the client exited
 * non-zero: atftp's "tftp: aborting", exit 255), `stalls` (no end within
 * the deadline; killed), `mismatches` (exit 0 but a wrong file) and the
 * first error; a `failed-runs` total. Env: RSERPOOL_BENCH_TFTP_CLIENTS_KB
 * (file size, default 1000), RSERPOOL_BENCH_TFTP_DEADLINE_S (per run,
 * default 10).
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchContext } from './context.js';
import {
  CLIENT_CPU,
  FILE,
  checkFile,
  clientArgv,
  envInt,
  killAll,
  lastLine,
  makeFile,
  removeFile,
  repoRoot,
  runClient,
  startGateway,
  startPe,
  startRegistrar,
  type ClientSpec,
  type Registrar,
  type Server,
} from './_tftp-common.js';
import { ensureTftpTools } from './_tftp-tools.js';

/** The tftp bench's settings, per client. */
const SETTINGS: ClientSpec[] = [
  { client: 'curl', blksize: 1468, windowsize: 1 },
  { client: 'curl', blksize: 65464, windowsize: 1 },
  { client: 'tftp-hpa', blksize: 512, windowsize: 1 },
  ...[
    [1468, 8],
    [1468, 32],
    [8192, 16],
    [65464, 4],
  ].flatMap(([blksize, windowsize]) => (['atftp', 'rserpool'] as const).map((client) => ({ client, blksize: blksize!, windowsize: windowsize! }))),
];

interface Tally {
  spec: ClientSpec;
  target: 'pe' | 'gateway';
  runs: number;
  aborts: number;
  stalls: number;
  mismatches: number;
  firstError?: string;
}

export async function run(ctx: BenchContext): Promise<void> {
  if (availableParallelism() < 2) throw new Error('tftp-clients pins servers and clients to cores 0 and 1: it needs 2 cores');
  const runs = ctx.runs ?? (ctx.quick ? 3 : 30);
  const bytes = envInt('RSERPOOL_BENCH_TFTP_CLIENTS_KB', 1000) * 1000;
  const deadlineMs = envInt('RSERPOOL_BENCH_TFTP_DEADLINE_S', 10) * 1000;
  const tools = ensureTftpTools(join(repoRoot, 'test', 'bench', '.cache'), ctx.log);
  const has = { curl: !!tools.curl, 'tftp-hpa': !!tools.tftpHpa, atftp: !!tools.atftp, rserpool: true };
  for (const c of ['curl', 'tftp-hpa', 'atftp'] as const) if (!has[c]) ctx.log(`tftp-clients: ${c} unavailable, left out`);

  const tmp = mkdtempSync(join(tmpdir(), 'rserpool-tftp-clients-'));
  const started: Array<Server | Registrar> = [];
  const onSignal = (sig: NodeJS.Signals): void => {
    killAll();
    rmSync(tmp, { recursive: true, force: true });
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    chmodSync(tmp, 0o755);
    const root = join(tmp, 'root');
    const outDir = join(tmp, 'out');
    mkdirSync(root, { mode: 0o755 });
    mkdirSync(outDir);
    const sha256 = makeFile(join(root, FILE), bytes);
    const handle = 'bench-clients';
    const registrar = await startRegistrar();
    started.push(registrar);
    const pe = await startPe(root, { registrar: registrar.url, handle, secret: 'tftp-clients-bench-secret' });
    started.push(pe);
    await registrar.registered(1);
    const gateway = await startGateway(registrar.url, handle);
    started.push(gateway);
    ctx.log(
      `tftp-clients: ${bytes / 1000} kB file; PE on 127.0.0.1:${pe.port}, gateway on 127.0.0.1:${gateway.port}; ${runs} run(s) each, deadline ${deadlineMs / 1000} s`,
    );

    const tallies: Tally[] = [];
    for (const target of ['pe', 'gateway'] as const) {
      const port = target === 'pe' ? pe.port : gateway.port;
      for (const spec of SETTINGS.filter((s) => has[s.client])) {
        const t: Tally = { spec, target, runs: 0, aborts: 0, stalls: 0, mismatches: 0 };
        tallies.push(t);
        const label = `${spec.client} ${spec.blksize}/${spec.windowsize} via ${target}`;
        for (let i = 0; i < runs; i++) {
          const out = join(outDir, `${spec.client}-${target}.bin`);
          removeFile(out);
          const r = await runClient(CLIENT_CPU, clientArgv(tools, spec, port, FILE, out), tools.env, deadlineMs);
          t.runs++;
          let error: string | undefined;
          if (r.timedOut) {
            t.stalls++;
            error = `stalled: no end within ${deadlineMs / 1000} s`;
          } else if (r.code !== 0) {
            t.aborts++;
            const said = lastLine(r.stderr) || lastLine(r.stdout);
            error = `exit ${r.code}${said ? `: ${said}` : ''}`;
          } else {
            const wrong = await checkFile(out, bytes, sha256);
            if (wrong) {
              t.mismatches++;
              error = wrong;
            }
          }
          removeFile(out);
          if (error) {
            t.firstError ??= error;
            ctx.log(`tftp-clients: ${label} run ${i + 1}: ${error}`);
          }
        }
        const failed = t.aborts + t.stalls + t.mismatches;
        ctx.log(`tftp-clients: ${label}: ${runs - failed}/${runs} ok`);
        ctx.report({
          name: 'failed-runs',
          value: failed,
          unit: 'runs',
          client: spec.client,
          blksize: spec.blksize,
          windowsize: spec.windowsize,
          target,
          runs: t.runs,
          aborts: t.aborts,
          stalls: t.stalls,
          mismatches: t.mismatches,
          bytes,
          ...(t.firstError ? { error: t.firstError } : {}),
        });
      }
    }
    const sum = (f: (t: Tally) => number): number => tallies.reduce((a, t) => a + f(t), 0);
    ctx.report({
      name: 'failed-runs-total',
      value: sum((t) => t.aborts + t.stalls + t.mismatches),
      unit: 'runs',
      runs: sum((t) => t.runs),
      aborts: sum((t) => t.aborts),
      stalls: sum((t) => t.stalls),
      mismatches: sum((t) => t.mismatches),
      bytes,
    });
  } finally {
    for (const s of started.reverse()) await s.stop();
    rmSync(tmp, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
