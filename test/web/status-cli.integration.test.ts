/** `rserpool status` against a registrar with --http-token: pages, not the whole handlespace; no token, no data. */
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, startCli, type CliProcess } from '../cli/run.js';

const TOKEN = 'status-cli-token-0123456789';
const procs: CliProcess[] = [];
afterEach(async () => {
  for (const p of procs.splice(0)) {
    p.kill('SIGKILL');
    await p.exited;
  }
});

describe('rserpool status', () => {
  it('prints the summary and a page of each pool with the token, and refuses without it', async () => {
    const registrar = startCli([
      'registrar',
      '--id',
      '0x5a',
      '--asap',
      'tcp://127.0.0.1:0',
      '--http',
      '127.0.0.1:0',
      '--announce',
      'off',
      '--http-token',
      TOKEN,
    ]);
    procs.push(registrar);
    const [, asap, http] = await registrar.waitForLine(/^registrar 0x0000005a asap (\S+) status (\S+)\/status$/, 30_000);
    for (const id of [1, 2, 3]) {
      const pe = startCli(['register', '--handle', 'files', '--transport', `udp://127.0.0.1:${7200 + id}`, '--identifier', String(id), '--registrar', asap!]);
      procs.push(pe);
      await pe.waitForLine(/^registered /, 30_000);
    }
    const ok = await runCli(['status', '--registrar', http!, '--limit', '2'], { env: { RSERPOOL_HTTP_TOKEN: TOKEN } });
    expect(ok.code, ok.stderr).toBe(0);
    const lines = ok.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^registrar 0x0000005a {2}synchronised/);
    expect(lines[1]).toMatch(/^3 pool elements \(3 owned here\) in 1 pools/);
    expect(lines.slice(2)).toEqual([
      'pool files  (3 PEs)',
      expect.stringMatching(/^ {2}0x00000001 {2}udp:\/\/127\.0\.0\.1:7201 /),
      expect.stringMatching(/^ {2}0x00000002 {2}udp:\/\/127\.0\.0\.1:7202 /),
      '  ... 1 more',
    ]);
    const denied = await runCli(['status', '--registrar', http!]);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/HTTP 401 \(give the token/);
    expect(denied.stdout).toBe('');
  });
});
