/**
 * npm run chaos -- [--seed N] [--seconds S] [--registrars N] [--sidecars N]
 *                  [--tftp N] [--fault-every MS] [--loss P] [--no-netns]
 * Real registrars, sidecar PEs and TFTP PEs under random faults (kill -9 and
 * restart, SIGSTOP/SIGCONT, bursts, 1 % loss, a partitioned registrar) for
 * --seconds, then waits for convergence, stops everything with SIGTERM and
 * prints ONE JSON line (progress goes to stderr). As root it runs inside a
 * network namespace of its own (iptables there makes loss and partitions);
 * otherwise on the host loopback without them. Exits 0 when every count that
 * must be zero is, 1 otherwise, 2 on bad flags.
 */
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runChaos, type ChaosReport } from './chaos.js';

const NS_ENV = 'RSERPOOL_CHAOS_NETNS';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    seconds: { type: 'string', default: '90' },
    registrars: { type: 'string', default: '3' },
    sidecars: { type: 'string', default: '6' },
    tftp: { type: 'string', default: '3' },
    'fault-every': { type: 'string', default: '3000' },
    loss: { type: 'string', default: '0.01' },
    'converge-limit': { type: 'string', default: '30000' },
    'no-netns': { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
  },
});

function num(name: string, text: string | undefined, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < min || n > max) {
    process.stderr.write(`chaos: --${name} must be a number in [${min}, ${max}], not '${text}'\n`);
    process.exit(2);
  }
  return n;
}

const seed = values.seed === undefined ? Math.floor(Math.random() * 1e9) : num('seed', values.seed, 0, 2 ** 32 - 1);
const root = process.getuid?.() === 0;
const hasTool = (cmd: string, args: string[]): boolean => {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

if (root && !values['no-netns'] && process.env[NS_ENV] === undefined) {
  if (!hasTool('iptables', ['--version'])) installIptables();
  if (hasTool('ip', ['netns', 'list']) && hasTool('iptables', ['--version'])) {
    // Run again inside a namespace of its own: its loopback and iptables rules are the run's alone.
    const ns = `rspchaos${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns]);
    let code: number;
    try {
      execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
      const self = fileURLToPath(import.meta.url);
      const args = withoutSeed(process.argv.slice(2));
      const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...process.execArgv, self, ...args, '--seed', String(seed)], {
        stdio: 'inherit',
        env: { ...process.env, [NS_ENV]: ns },
      });
      for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
      code = await new Promise<number>((resolve) => child.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
    } finally {
      // Anything of the run still in the namespace goes with it.
      try {
        const pids = execFileSync('ip', ['netns', 'pids', ns]).toString().split(/\s+/).filter(Boolean).map(Number);
        for (const pid of pids) process.kill(pid, 'SIGKILL');
      } catch {
        // nothing left
      }
      execFileSync('ip', ['netns', 'del', ns]);
    }
    process.exit(code);
  } else {
    process.stderr.write('chaos: no ip netns or iptables here: running on the host loopback without loss or partitions\n');
  }
}

const inNs = process.env[NS_ENV] !== undefined;
const log = values.quiet ? () => {} : (line: string) => void process.stderr.write(`chaos: ${line}\n`);
const seconds = num('seconds', values.seconds, 1, 3600);
const hardCap = setTimeout(
  () => {
    process.stderr.write('chaos: over the hard cap, stopping\n');
    process.exit(1);
  },
  (seconds + 180) * 1000,
);
hardCap.unref();
log(`seed ${seed}, ${seconds} s of faults${inNs ? `, namespace ${process.env[NS_ENV]}` : ''}`);
const report: ChaosReport = await runChaos({
  seed,
  seconds,
  registrars: num('registrars', values.registrars, 2, 9),
  sidecars: num('sidecars', values.sidecars, 0, 200),
  tftpPes: num('tftp', values.tftp, 2, 50),
  faultEveryMs: num('fault-every', values['fault-every'], 100, 60_000),
  loss: num('loss', values.loss, 0, 0.5),
  net: inNs,
  uids: inNs,
  convergeLimitMs: num('converge-limit', values['converge-limit'], 1000, 600_000),
  log,
});
process.stdout.write(`${JSON.stringify(report)}\n`);
process.exit(passed(report) ? 0 : 1);

export function passed(r: ChaosReport): boolean {
  return (
    r.downloads.failed === 0 &&
    r.downloads.shaMismatch === 0 &&
    r.lost === 0 &&
    r.stale === 0 &&
    r.duplicated === 0 &&
    r.diedByThemselves === 0 &&
    r.notExitingOnSigterm === 0 &&
    r.convergenceMs !== null
  );
}

function withoutSeed(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--seed') i++;
    else if (!argv[i]!.startsWith('--seed=')) out.push(argv[i]!);
  }
  return out;
}

function installIptables(): void {
  process.stderr.write('chaos: installing iptables (apt-get)\n');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'iptables'], { env, stdio: 'ignore' });
  } catch {
    try {
      execFileSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore' });
      execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'iptables'], { env, stdio: 'ignore' });
    } catch {
      // reported by the caller: no iptables
    }
  }
}
