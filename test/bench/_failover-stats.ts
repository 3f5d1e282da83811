/**
 * What the failover bench makes of each `rserpool tftp get --json` run: its
 * result line, and the figures over the runs (kill -9 runs: the stall the
 * client reported; loss runs: failovers although no PE died, and stalls).
 */
import { median } from './_tftp-common.js';

/** The fields of `tftp get --json` the bench reads. */
export interface GetLine {
  bytes: number;
  sha256: string;
  failovers: number;
  stallMs: number;
  elapsedMs: number;
  timeouts: number;
  servedBy: { pe: string; fromBlock: number; toBlock: number }[];
}

/** The last line of `stdout` that is JSON `take` accepts (log lines and other JSON are skipped), as `take` makes it. */
export function lastJsonLine<T>(stdout: string, take: (j: Record<string, unknown>) => T | undefined): T | undefined {
  for (const line of stdout.trim().split('\n').reverse()) {
    if (!line.startsWith('{')) continue;
    let j: unknown;
    try {
      j = JSON.parse(line);
    } catch {
      continue;
    }
    const got = typeof j === 'object' && j !== null ? take(j as Record<string, unknown>) : undefined;
    if (got !== undefined) return got;
  }
  return undefined;
}

/** The last line of `stdout` that is a `tftp get --json` result, or undefined. */
export function parseGetLine(stdout: string): GetLine | undefined {
  return lastJsonLine(stdout, (raw) => {
    const j = raw as Partial<GetLine>;
    if (typeof j.bytes !== 'number' || typeof j.failovers !== 'number' || typeof j.stallMs !== 'number' || !Array.isArray(j.servedBy)) return undefined;
    return {
      bytes: j.bytes,
      sha256: typeof j.sha256 === 'string' ? j.sha256 : '',
      failovers: j.failovers,
      stallMs: j.stallMs,
      elapsedMs: typeof j.elapsedMs === 'number' ? j.elapsedMs : NaN,
      timeouts: typeof j.timeouts === 'number' ? j.timeouts : 0,
      servedBy: j.servedBy,
    };
  });
}

/** One download of a run. */
export interface FailoverRun {
  /** The result line; undefined when the client failed or was stopped at the deadline. */
  line: GetLine | undefined;
  /** The file written is the one served (size and SHA-256). */
  shaOk: boolean;
  /** User+sys CPU seconds of the client process (NaN if unknown). */
  cpuS: number;
  /** The client ran into the deadline. */
  timedOut: boolean;
  /** The PE killed during this download (kill runs), by the identifier `servedBy` names it with. */
  killed?: string;
  /** A PE of the pool exited during this download without being killed. */
  peDied?: boolean;
  /** Why the client failed: the last line it printed. */
  error?: string;
}

export interface KillSummary {
  runs: number;
  /** Runs whose kill landed mid-transfer: served first by the PE killed, then by another after one failover or more. */
  failedOver: number;
  /** Failovers past the first in those runs: between live PEs, so false ones. */
  extraFailovers: number;
  stallMedianMs: number;
  stallWorstMs: number;
  shaOk: number;
  cpuMedianS: number;
}

/** The kill -9 runs: the stall over those that failed over from the PE killed. */
export function summarizeKills(runs: readonly FailoverRun[]): KillSummary {
  const stalls: number[] = [];
  let extraFailovers = 0;
  for (const r of runs) {
    const l = r.line;
    if (!l || r.killed === undefined || l.failovers < 1) continue;
    if (l.servedBy[0]?.pe !== r.killed || l.servedBy.length < 2) continue;
    stalls.push(l.stallMs);
    extraFailovers += l.failovers - 1;
  }
  const cpu = runs.map((r) => r.cpuS).filter((c) => Number.isFinite(c));
  return {
    runs: runs.length,
    failedOver: stalls.length,
    extraFailovers,
    stallMedianMs: median(stalls),
    stallWorstMs: stalls.length === 0 ? NaN : Math.max(...stalls),
    shaOk: runs.filter((r) => r.shaOk).length,
    cpuMedianS: median(cpu),
  };
}

export interface LossSummary {
  runs: number;
  /** Failovers the client reported in runs where no PE died. */
  falseFailovers: number;
  /** Runs with at least one such failover. */
  runsWithFalseFailover: number;
  /** The longest stall the client reported (a failover's). */
  stallWorstMs: number;
  /** Retransmission timeouts of the client, over all runs. */
  timeouts: number;
  /** Runs that did not end within the deadline, or failed. */
  unfinished: number;
  shaOk: number;
  elapsedMedianMs: number;
}

/** The loss runs (no PE killed): every failover in a run where no PE died is a false one. */
export function summarizeLoss(runs: readonly FailoverRun[]): LossSummary {
  let falseFailovers = 0;
  let runsWithFalseFailover = 0;
  let stallWorstMs = 0;
  let timeouts = 0;
  for (const r of runs) {
    const l = r.line;
    if (!l) continue;
    timeouts += l.timeouts;
    stallWorstMs = Math.max(stallWorstMs, l.stallMs);
    if (r.peDied || l.failovers === 0) continue;
    falseFailovers += l.failovers;
    runsWithFalseFailover++;
  }
  return {
    runs: runs.length,
    falseFailovers,
    runsWithFalseFailover,
    stallWorstMs,
    timeouts,
    unfinished: runs.filter((r) => !r.line || r.timedOut).length,
    shaOk: runs.filter((r) => r.shaOk).length,
    elapsedMedianMs: median(runs.flatMap((r) => (r.line ? [r.line.elapsedMs] : []))),
  };
}
