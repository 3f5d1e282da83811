/** `rserpool tftp serve` as a real process next to a real registrar process, on 127.0.0.1 with ephemeral ports. */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli, type CliProcess } from '../cli/run.js';
import { tempDir } from './server-helpers.js';

const run = promisify(execFile);
let dir: { path: string; remove: () => Promise<void> };
let registrar: CliProcess;
let url: string;
const content = randomBytes(500_000);

beforeAll(async () => {
  dir = await tempDir('rserpool-tftp-cli-');
  await writeFile(join(dir.path, 'file.bin'), content);
  registrar = startCli(['registrar', '--asap', 'tcp://127.0.0.1:0', '--http', 'off', '--announce', 'off', '--startup-grace', '0']);
  url = (await registrar.waitForLine(/asap (tcp:\/\/127\.0\.0\.1:\d+)/, 20_000))[1]!;
});
afterAll(async () => {
  registrar.kill();
  await registrar.exited;
  await dir.remove();
});

describe('rserpool tftp serve', () => {
  it('registers, serves curl, and deregisters on SIGTERM', async () => {
    const pe = startCli(
      ['tftp', 'serve', '--root', dir.path, '--registrar', url, '--port', '0', '--handle', 'cli-files', '--identifier', '0x51', '--workers', '2'],
      {
        RSERPOOL_COOKIE_SECRET: 'cli test pool secret',
      },
    );
    try {
      const m = await pe.waitForLine(/^serving (.+) on (127\.0\.0\.1):(\d+) as PE (0x[0-9a-f]{8}) under (\S+)$/, 20_000);
      expect(m[1]).toBe(dir.path);
      expect(m[4]).toBe('0x00000051');
      expect(m[5]).toBe('cli-files');
      const port = m[3]!;
      const resolved = await runCli(['resolve', 'cli-files', '--registrar', url]);
      expect(resolved.stdout).toContain(`0x00000051  udp://127.0.0.1:${port}`);
      const out = join(dir.path, 'curl-out.bin');
      await run('curl', ['-s', '-S', '--max-time', '30', '-o', out, '--tftp-blksize', '1468', `tftp://127.0.0.1:${port}/file.bin`]);
      expect((await readFile(out)).equals(content)).toBe(true);
      pe.kill('SIGTERM');
      await pe.nextLine(/^stopped PE 0x00000051 \(SIGTERM\)$/, 20_000);
      expect(await pe.exited).toBe(0);
      const after = await runCli(['resolve', 'cli-files', '--registrar', url]);
      expect(after.code).not.toBe(0);
      expect(after.stderr).toMatch(/no pool elements under handle 'cli-files'/);
    } finally {
      pe.kill('SIGKILL');
    }
  });

  it('listens for ASAP by default (a registrar taking it over, or drain, can reach it); --asap-listen off registers none', async () => {
    const env = { RSERPOOL_COOKIE_SECRET: 'cli test pool secret' };
    const common = ['tftp', 'serve', '--root', dir.path, '--registrar', url, '--port', '0', '--handle', 'cli-asap'];
    const reachable = startCli([...common, '--identifier', '0x52'], env);
    const unreachable = startCli([...common, '--identifier', '0x53', '--asap-listen', 'off'], env);
    try {
      await reachable.waitForLine(/^serving /, 20_000);
      await unreachable.waitForLine(/^serving /, 20_000);
      const none = await runCli(['drain', '--handle', 'cli-asap', '--pe', '0x53', '--registrar', url], { timeoutMs: 30_000 });
      expect(none.stdout).toMatch(/^PE 0x00000053 cannot be asked: it registered no ASAP listener/m);
      const drained = await runCli(['drain', '--handle', 'cli-asap', '--pe', '0x52', '--registrar', url], { timeoutMs: 30_000 });
      expect(drained.stdout, drained.stderr).toMatch(/^PE 0x00000052 deregistered, leaving$/m);
      expect(await reachable.exited).toBe(0);
    } finally {
      reachable.kill('SIGKILL');
      unreachable.kill('SIGKILL');
    }
  });

  it('says what is wrong with its flags', async () => {
    const noRoot = await runCli(['tftp', 'serve', '--registrar', url]);
    expect(noRoot.code).toBe(2);
    expect(noRoot.stderr).toMatch(/--root is required/);
    const badRoot = await runCli(['tftp', 'serve', '--root', join(dir.path, 'missing'), '--registrar', url, '--port', '0']);
    expect(badRoot.code).toBe(1);
    expect(badRoot.stderr).toMatch(/RSP_ERR_INVALID_OPTION: root .*missing is not a directory/);
    const badPort = await runCli(['tftp', 'serve', '--root', dir.path, '--port', '70000']);
    expect(badPort.code).toBe(2);
    expect(badPort.stderr).toMatch(/--port takes a whole number from 0 to 65535/);
    const badWorkers = await runCli(['tftp', 'serve', '--root', dir.path, '--port', '0', '--workers', 'many']);
    expect(badWorkers.code).toBe(2);
    expect(badWorkers.stderr).toMatch(/--workers takes a whole number from 0 to 1024/);
  });
});
