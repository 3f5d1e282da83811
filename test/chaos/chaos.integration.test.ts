import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ChaosReport } from './chaos.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** `npm run chaos` for a short while: its one JSON line, and its stderr for the failure message. */
function chaos(args: string[]): Promise<{ code: number | null; report: ChaosReport | undefined; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/chaos/run.ts', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      let report: ChaosReport | undefined;
      try {
        report = JSON.parse(line) as ChaosReport;
      } catch {
        report = undefined;
      }
      resolve({ code, report, stderr });
    });
  });
}

describe('npm run chaos (short)', () => {
  it('registrars, sidecars and TFTP PEs under kill -9, pauses, bursts, loss and a partition: no failed download, nothing lost, stale or duplicated, every process stops on SIGTERM', async () => {
    const { code, report, stderr } = await chaos(['--seconds', '24', '--seed', '20261206', '--fault-every', '2500']);
    expect(report, stderr).toBeDefined();
    const r = report!;
    const why = `${JSON.stringify(r)}\n${stderr.split('\n').slice(-40).join('\n')}`;
    expect(
      Object.values(r.faults).reduce((a, b) => a + b, 0),
      why,
    ).toBeGreaterThanOrEqual(5);
    expect(r.downloads.ok, why).toBeGreaterThan(0);
    expect(
      {
        failed: r.downloads.failed,
        shaMismatch: r.downloads.shaMismatch,
        lost: r.lost,
        stale: r.stale,
        duplicated: r.duplicated,
        diedByThemselves: r.diedByThemselves,
        notExitingOnSigterm: r.notExitingOnSigterm,
      },
      why,
    ).toEqual({ failed: 0, shaMismatch: 0, lost: 0, stale: 0, duplicated: 0, diedByThemselves: 0, notExitingOnSigterm: 0 });
    expect(r.convergenceMs, why).not.toBeNull();
    expect(code, why).toBe(0);
  }, 240_000);
});
