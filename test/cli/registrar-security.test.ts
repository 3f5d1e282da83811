import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli, type CliProcess } from './run.js';

let dir: string;
const procs: CliProcess[] = [];
const key = (): string => randomBytes(32).toString('hex');
const keys = { 'tftp-1': key(), someone: key() };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rserpool-sec-'));
  writeFileSync(
    join(dir, 'keys'),
    Object.entries(keys)
      .map(([id, k]) => `${id}:${k}\n`)
      .join(''),
  );
  writeFileSync(
    join(dir, 'acl.yaml'),
    ['rules:', '  - identity: "tftp-*"', '    roles: [pe]', '    handles: [tftp]', '  - identity: someone', '    roles: [pu]', '    handles: ["*"]', ''].join(
      '\n',
    ),
  );
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ rules: [{ identity: 'x', roles: ['root'] }] }));
});
afterAll(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  rmSync(dir, { recursive: true, force: true });
});

describe('rserpool registrar: ENRP exposure and --acl', () => {
  it('refuses a plain tcp:// ENRP listener off loopback without --insecure, before binding anything', async () => {
    const r = await runCli(['registrar', '--asap', 'tcp://127.0.0.1:0', '--http', 'off', '--announce', 'off', '--enrp', 'tcp://0.0.0.0:0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/plain tcp:\/\/ off loopback.*--insecure/);
  });

  it('names the rule and the reason of a bad --acl file', async () => {
    const r = await runCli(['registrar', '--asap', 'tcp://127.0.0.1:0', '--http', 'off', '--announce', 'off', '--acl', join(dir, 'bad.json')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/rule 1: unknown role 'root'/);
  });

  it('over TLS-PSK with an ACL: the PE identity registers, an authorized PU resolves, a stranger is refused', async () => {
    const reg = startCli([
      'registrar',
      '--asap',
      'tls://127.0.0.1:0',
      '--http',
      'off',
      '--announce',
      'off',
      '--tls-psk-file',
      join(dir, 'keys'),
      '--acl',
      join(dir, 'acl.yaml'),
      '--print-events',
    ]);
    procs.push(reg);
    const [, url] = (await reg.waitForLine(/^registrar \S+ asap (\S+)/, 20_000))!;
    const pe = startCli(['register', '--registrar', url!, '--tls-psk', `tftp-1:${keys['tftp-1']}`, '--handle', 'tftp', '--transport', 'udp://127.0.0.1:6969']);
    procs.push(pe);
    await pe.waitForLine(/^registered \S+ under tftp/, 20_000);
    const ok = await runCli(['resolve', 'tftp', '--registrar', url!, '--tls-psk', `someone:${keys.someone}`]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/udp:\/\/127\.0\.0\.1:6969/);
    // A PE key used to resolve: this identity holds no pu role.
    const refused = await runCli(['resolve', 'tftp', '--registrar', url!, '--tls-psk', `tftp-1:${keys['tftp-1']}`]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/not authorized/);
    // The operator sees who was refused what.
    await reg.waitForLine(/^acl-refused pu tftp by "psk:tftp-1"$/, 10_000);
    // No key at all: the TLS handshake itself fails.
    const stranger = await runCli(['resolve', 'tftp', '--registrar', url!, '--tls-psk', `someone:${key()}`]);
    expect(stranger.code).not.toBe(0);
  });
});
