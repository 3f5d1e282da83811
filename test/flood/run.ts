/**
 * npm run flood -- [--connections N] [--rrqs N] [--echoes N] [--json]
 * Floods a registrar and a TFTP PE (real processes, loopback only) while a
 * PE registers and a `tftp get` runs; prints memory, amplification and what
 * the legitimate work got. Exits 1 when a process died, the legitimate work
 * failed, or the run passed its hard cap of 150 s; 2 on bad flags or when
 * the open-file limit cannot be raised far enough.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { killAll, mib } from './common.js';
import { runFlood, totalEchoes, type FloodReport, type UdpAttackStats } from './flood.js';

const HARD_CAP_MS = 150_000;
const REEXEC = 'RSERPOOL_FLOOD_REEXEC';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '5000' },
    rrqs: { type: 'string', default: '1000' },
    echoes: { type: 'string', default: '10000' },
    json: { type: 'boolean', default: false },
    'require-options': { type: 'boolean', default: false },
  },
});
const counts = {
  connections: count('connections', values.connections),
  rrqs: count('rrqs', values.rrqs),
  echoes: count('echoes', values.echoes),
};
const json = values.json ?? false;

// Each idle connection and each attacking socket is a descriptor here, and each accepted connection one in the registrar.
const needFiles = counts.connections + counts.rrqs + counts.echoes + 1024;
const [soft, hard] = openFileLimits();
if (soft < needFiles) {
  if (hard < needFiles || process.env[REEXEC]) {
    process.stderr.write(`flood: needs ${needFiles} open files, the limit is ${soft} (hard ${hard}); raise it (ulimit -n) or lower the counts\n`);
    process.exit(2);
  }
  // Node cannot raise its own limit: a shell raises it and runs this again (the pool's processes inherit it).
  const child = spawn('/bin/sh', ['-c', `ulimit -n ${needFiles} && exec "$0" "$@"`, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [REEXEC]: '1' },
  });
  child.on('exit', (code, sig) => process.exit(code ?? (sig ? 1 : 0)));
} else {
  await main();
}

async function main(): Promise<void> {
  const cap = setTimeout(() => {
    process.stderr.write(`flood: over the hard cap of ${HARD_CAP_MS / 1000} s, stopping\n`);
    killAll();
    process.exit(1);
  }, HARD_CAP_MS);
  cap.unref();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      killAll();
      process.exit(1);
    });
  }
  let report: FloodReport;
  try {
    report = await runFlood({
      ...counts,
      ...(values['require-options'] ? { peArgs: ['--require-options'] } : {}),
      log: json ? undefined : (line) => process.stderr.write(`flood: ${line}\n`),
    });
  } catch (err) {
    process.stderr.write(`flood: could not run: ${(err as Error).stack ?? String(err)}\n`);
    killAll();
    process.exit(1);
  }
  clearTimeout(cap);
  if (json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else print(report);
  process.exit(report.ok ? 0 : 1);
}

function count(flag: string, text: string | undefined): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0 || n > 100_000) {
    process.stderr.write(`flood: --${flag} takes a whole number from 0 to 100000, got '${text}'\n`);
    process.exit(2);
  }
  return n;
}

function openFileLimits(): [number, number] {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  const n = (t: string | undefined): number => (t === undefined || t === 'unlimited' ? Infinity : Number(t));
  return [n(m?.[1]), n(m?.[2])];
}

function print(r: FloodReport): void {
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  out(
    `flood: ${r.counts.connections} idle connections, ${r.counts.rrqs} bare RRQs, ${r.counts.echoes} cookie echoes (cookie ${r.cookieBytes} bytes); ${(r.elapsedMs / 1000).toFixed(1)} s`,
  );
  out('');
  out(`${'process'.padEnd(10)} ${'before'.padStart(10)} ${'peak during'.padStart(12)} ${'after'.padStart(10)}`);
  for (const [role, m] of Object.entries(r.memory))
    out(`${role.padEnd(10)} ${mib(m.before).padStart(10)} ${mib(m.peakDuring).padStart(12)} ${mib(m.after).padStart(10)}`);
  out('');
  const c = r.connections;
  const refused =
    Object.entries(c.refused)
      .map(([code, n]) => `${code} ${n}`)
      .join(', ') || 'none';
  out(`ASAP port: ${c.attempted} connections tried, ${c.accepted} completed the TCP handshake, failed: ${refused}`);
  out(
    `  closed by the registrar: ${c.closedByRegistrar} (${c.closedAtOnce} within 1 s: turned away by a cap); open when the legitimate work started: ${c.openAtLegit}, at the end: ${c.openAtEnd}`,
  );
  out('');
  out(
    `${'attack'.padEnd(16)} ${'sources'.padStart(8)} ${'sent B'.padStart(10)} ${'answered'.padStart(9)} ${'dgrams in'.padStart(10)} ${'recv B'.padStart(12)} ${'max B/src'.padStart(10)} ${'factor'.padStart(8)}`,
  );
  const row = (s: UdpAttackStats): void =>
    out(
      `${s.kind.padEnd(16)} ${String(s.sources).padStart(8)} ${String(s.bytesSent).padStart(10)} ${String(s.answered).padStart(9)} ${String(s.datagramsReceived).padStart(10)} ${String(s.bytesReceived).padStart(12)} ${String(s.maxBytesPerSource).padStart(10)} ${s.factor.toFixed(2).padStart(8)}`,
    );
  row(r.rrq);
  for (const s of r.echoes) row(s);
  row(totalEchoes(r.echoes));
  out("(factor: bytes the PE sent per byte it received, on the attackers' sockets; the attackers never answer)");
  out('');
  out(
    `legit register+resolve: ${r.legit.registerAndResolve.ok ? 'ok' : 'FAILED'} in ${r.legit.registerAndResolve.ms} ms (${r.legit.registerAndResolve.detail})`,
  );
  out(`legit tftp get:         ${r.legit.get.ok ? 'ok' : 'FAILED'} in ${r.legit.get.ms} ms (${r.legit.get.detail})`);
  for (const p of r.problems) out(`PROBLEM: ${p}`);
  out(r.ok ? 'flood: every process survived and the legitimate work completed' : `flood: ${r.problems.length} problem(s)`);
}
