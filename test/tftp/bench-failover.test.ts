import { describe, expect, it } from 'vitest';
import { parseGetLine, summarizeKills, summarizeLoss, type FailoverRun, type GetLine } from '../bench/_failover-stats.js';

function line(over: Partial<GetLine>): GetLine {
  return {
    bytes: 100,
    sha256: 'ab',
    failovers: 0,
    stallMs: 0,
    elapsedMs: 1000,
    timeouts: 0,
    servedBy: [{ pe: '0x00000001', fromBlock: 1, toBlock: 9 }],
    ...over,
  };
}

const failedOver = (from: string, stallMs: number, cpuS = 1): FailoverRun => ({
  line: line({
    failovers: 1,
    stallMs,
    servedBy: [
      { pe: from, fromBlock: 1, toBlock: 4 },
      { pe: '0x00000009', fromBlock: 5, toBlock: 9 },
    ],
  }),
  shaOk: true,
  cpuS,
  timedOut: false,
  killed: from,
});

describe('failover bench figures', () => {
  it('parseGetLine - takes the last result line of tftp get --json, past log lines', () => {
    const out = `{"level":30,"msg":"failed over"}\nnot json\n${JSON.stringify(line({ failovers: 1, stallMs: 42 }))}\n`;
    expect(parseGetLine(out)).toMatchObject({ failovers: 1, stallMs: 42, bytes: 100 });
    expect(parseGetLine('{"level":30,"msg":"x"}\n')).toBeUndefined();
    expect(parseGetLine('')).toBeUndefined();
  });

  it('summarizeKills - median and worst stall over the runs that failed over from the PE killed, failovers past the first; SHA and CPU over all', () => {
    const runs: FailoverRun[] = [
      failedOver('0x00000001', 30, 2),
      failedOver('0x00000002', 10, 4),
      { ...failedOver('0x00000003', 500, 3), line: { ...failedOver('0x00000003', 500).line!, failovers: 3 } },
      // The kill came after the end (no failover), and one where another PE served first: neither is a failover stall.
      { line: line({}), shaOk: true, cpuS: 1, timedOut: false, killed: '0x00000001' },
      { ...failedOver('0x00000002', 9_999), killed: '0x00000003' },
      { line: undefined, shaOk: false, cpuS: NaN, timedOut: true, killed: '0x00000001' },
    ];
    expect(summarizeKills(runs)).toEqual({ runs: 6, failedOver: 3, extraFailovers: 2, stallMedianMs: 30, stallWorstMs: 500, shaOk: 5, cpuMedianS: 2 });
  });

  it('summarizeLoss - a failover with no PE dead is false; one after a PE died is not; unfinished runs counted', () => {
    const ok = (over: Partial<GetLine>, peDied = false): FailoverRun => ({ line: line(over), shaOk: true, cpuS: 1, timedOut: false, peDied });
    const runs: FailoverRun[] = [
      ok({ timeouts: 3, elapsedMs: 900 }),
      ok({ failovers: 2, stallMs: 700, timeouts: 1, elapsedMs: 2000 }),
      ok({ failovers: 1, stallMs: 800, elapsedMs: 1500 }, true),
      { line: undefined, shaOk: false, cpuS: NaN, timedOut: true },
    ];
    expect(summarizeLoss(runs)).toEqual({
      runs: 4,
      falseFailovers: 2,
      runsWithFalseFailover: 1,
      stallWorstMs: 800,
      timeouts: 4,
      unfinished: 1,
      shaOk: 3,
      elapsedMedianMs: 1500,
    });
  });
});
