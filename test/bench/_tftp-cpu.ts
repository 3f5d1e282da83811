/**
 * CPU time of the tftp bench's processes (Linux). A server is put in a
 * cgroup of its own when the bench may make one (root; cgroup v1 cpuacct or
 * v2): its usage counts every thread and child, also those that ended
 * unreaped (tftpd-hpa forks one child per client and ignores SIGCHLD, so
 * its children never reach /proc's cutime). Otherwise /proc: user+sys of
 * the process and its threads, of its reaped children (cutime, cstime) and
 * of those still running.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';

/** Clock ticks per second of /proc/PID/stat times (USER_HZ; 100 on Linux builds we know). */
export const clockTicks = ((): number => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

export interface ProcTimes {
  /** Ticks of the process itself (all its threads). */
  utime: number;
  stime: number;
  /** Ticks of its children it has waited for. */
  cutime: number;
  cstime: number;
}

/** The times of one /proc/PID/stat line; the command name may hold spaces and parentheses, so fields count from the last ')'. */
export function parseProcStat(line: string): ProcTimes {
  const close = line.lastIndexOf(')');
  if (close < 0) throw new Error(`not a /proc/PID/stat line: ${line.slice(0, 80)}`);
  // After ')': state is field 3, utime field 14 ... cstime field 17.
  const f = line
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  const n = (i: number): number => {
    const v = Number(f[i - 3]);
    if (!Number.isFinite(v)) throw new Error(`/proc/PID/stat field ${i} is not a number: ${line.slice(0, 80)}`);
    return v;
  };
  return { utime: n(14), stime: n(15), cutime: n(16), cstime: n(17) };
}

function readStat(pid: number): ProcTimes | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined; // gone meanwhile
  }
}

/** Live children of `pid` (every thread's /proc/PID/task/TID/children). */
export function childrenOf(pid: number): number[] {
  const kids: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return kids;
  }
  for (const tid of tasks) {
    try {
      for (const k of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/)) if (k) kids.push(Number(k));
    } catch {
      // thread ended meanwhile
    }
  }
  return kids;
}

export function threadCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/task`).length;
  } catch {
    return 0;
  }
}

/** CPU seconds (user+sys) of `pid`, its reaped children and its live descendants; undefined when it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  const t = readStat(pid);
  if (!t) return undefined;
  let ticks = t.utime + t.stime + t.cutime + t.cstime;
  for (const kid of childrenOf(pid)) ticks += Math.round((cpuSeconds(kid) ?? 0) * clockTicks);
  return ticks / clockTicks;
}

/** CPU seconds per 10^9 bytes moved. */
export function perGB(cpu: number, bytes: number): number {
  return bytes > 0 ? cpu / (bytes / 1e9) : 0;
}

export interface CpuMeter {
  /** How the CPU is read: `cgroup` (every descendant, exact) or `proc` (misses children their parent never reaps). */
  source: 'cgroup' | 'proc';
  /** CPU seconds so far; undefined once the process is gone (proc) or unreadable. */
  read(): number | undefined;
  /** Removes the cgroup (once the process exited). */
  close(): void;
}

function cgroupDir(): { dir: string; usage: (d: string) => number } | undefined {
  const v1 = '/sys/fs/cgroup/cpuacct';
  if (existsSync(join(v1, 'cpuacct.usage'))) return { dir: v1, usage: (d) => Number(readFileSync(join(d, 'cpuacct.usage'), 'utf8')) / 1e9 };
  for (const v2 of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    if (!existsSync(join(v2, 'cgroup.controllers'))) continue;
    return {
      dir: v2,
      usage: (d) => {
        const m = /^usage_usec (\d+)$/m.exec(readFileSync(join(d, 'cpu.stat'), 'utf8'));
        if (!m) throw new Error(`no usage_usec in ${d}/cpu.stat`);
        return Number(m[1]) / 1e6;
      },
    };
  }
  return undefined;
}

let cgroups = 0;

/** A meter for `pid`, which should not have forked yet: a cgroup of its own if one can be made, else /proc. */
export function meterOf(pid: number): CpuMeter {
  const cg = cgroupDir();
  if (cg) {
    const dir = join(cg.dir, `rserpool-bench-${process.pid}-${++cgroups}`);
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'cgroup.procs'), String(pid));
      cg.usage(dir);
      return {
        source: 'cgroup',
        read: () => {
          try {
            return cg.usage(dir);
          } catch {
            return undefined;
          }
        },
        close: () => {
          try {
            rmdirSync(dir);
          } catch {
            // still has a process, or gone: the system's to clean
          }
        },
      };
    } catch {
      try {
        rmdirSync(dir);
      } catch {
        // never made
      }
    }
  }
  return { source: 'proc', read: () => cpuSeconds(pid), close: () => {} };
}
