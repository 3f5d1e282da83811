/** `rserpool demo` (npm start) as a user runs it: real processes, a kill -9 half-way, nothing left behind. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './run.js';

const scratch = mkdtempSync(join(tmpdir(), 'rserpool-demo-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function processesUnder(dir: string): string[] {
  const out = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(dir));
}

describe('rserpool demo', () => {
  it('downloads through a pool whose serving PE is killed half-way, then through a rolling restart of all three PEs: identical files, stalls under 1 s, everything cleaned up', async () => {
    const r = await runCli(['demo', '--json', '--size', '24'], { timeoutMs: 110_000, env: { TMPDIR: scratch } });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0]!) as {
      sha256Match: boolean;
      stallMs: number;
      failovers: number;
      bytes: number;
      mbPerSec: number;
      servedBy: { pe: string }[];
      rollingRestart: { sha256Match: boolean; stallMs: number; failovers: number; stalls: number[]; stopped: string[]; joined: string[] };
    };
    expect(result.sha256Match).toBe(true);
    expect(result.bytes).toBe(24 * 2 ** 20);
    expect(result.failovers).toBeGreaterThanOrEqual(1);
    expect(result.stallMs).toBeLessThan(1000);
    expect(result.mbPerSec).toBeGreaterThan(0);
    expect(new Set(result.servedBy.map((s) => s.pe)).size).toBeGreaterThanOrEqual(2);
    // The rolling restart: all three PEs of the pool got SIGTERM one after another during the second download, which they sent on; three new ones joined.
    const rolling = result.rollingRestart;
    expect(rolling.sha256Match).toBe(true);
    expect(rolling.stopped).toHaveLength(3);
    expect(new Set([...rolling.stopped, ...rolling.joined]).size).toBe(6);
    expect(rolling.failovers).toBeGreaterThanOrEqual(1);
    expect(rolling.stalls).toHaveLength(rolling.failovers);
    for (const ms of rolling.stalls) expect(ms).toBeLessThan(1000);
    expect(rolling.stallMs).toBe(Math.max(...rolling.stalls));
    expect(r.stderr.match(/^SIGTERM {6}PE 0x[0-9a-f]{8} at /gm)).toHaveLength(3);
    expect(r.stderr).toMatch(/^SIGTERM {6}PE 0x[0-9a-f]{8} at .*, while it serves the download$/m);
    // the human-readable story went to stderr
    expect(r.stderr).toMatch(/^kill -9 {6}PE 0x[0-9a-f]{8}/m);
    expect(r.stderr).toMatch(/^failover {5}PE 0x[0-9a-f]{8} -> PE 0x[0-9a-f]{8} at block \d+, cookie echoed/m);
    // (tsx keeps its own cache there)
    expect(readdirSync(scratch).filter((f) => f.startsWith('rserpool-demo-'))).toEqual([]);
    expect(processesUnder(scratch)).toEqual([]);
  }, 120_000);

  it('--counter runs the counter demo: the count survives kill -9 of its PE and of a registrar', async () => {
    const r = await runCli(['demo', '--counter', '--json', '--requests', '12'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout.trim()) as { countsContinuous: boolean; failovers: number; requests: number };
    expect(result).toMatchObject({ countsContinuous: true, requests: 12 });
    expect(result.failovers).toBeGreaterThanOrEqual(1);
  });

  it('refuses a bad option with a one-line error and exit status 2', async () => {
    const r = await runCli(['demo', '--size', 'lots']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/size/);
  });
});
