import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TOOLS, ensureTools } from './tools.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A PATH of one folder holding stand-ins for every tool but `hidden`, and (optionally) a fake apt-get. */
function fakePath(hidden: string[], aptGet?: 'installs' | 'installs nothing'): { path: string; aptLog: () => string } {
  const dir = mkdtempSync(join(tmpdir(), 'rserpool-tools-'));
  dirs.push(dir);
  const stub = (name: string): void => symlinkSync('/bin/true', join(dir, name));
  for (const t of Object.keys(TOOLS)) if (!hidden.includes(t)) stub(t);
  const log = join(dir, 'apt.log');
  writeFileSync(log, '');
  if (aptGet) {
    // Installing tshark/tftp-hpa puts tshark/tftp on this PATH.
    const install =
      aptGet === 'installs'
        ? `for p in "$@"; do case "$p" in tshark) /bin/ln -s /bin/true '${dir}/tshark';; tftp-hpa) /bin/ln -s /bin/true '${dir}/tftp';; esac; done`
        : '';
    writeFileSync(join(dir, 'apt-get'), `#!/bin/sh\necho "$DEBIAN_FRONTEND $*" >> '${log}'\n[ "$1" = install ] && { ${install || ':'}; }\nexit 0\n`);
    chmodSync(join(dir, 'apt-get'), 0o755);
  }
  return { path: dir, aptLog: () => readFileSync(log, 'utf8') };
}

describe('integration tools setup', () => {
  it('does nothing when every tool is on PATH', () => {
    const { path, aptLog } = fakePath([], 'installs');
    expect(() => ensureTools({ env: { PATH: path }, root: true, log: () => {} })).not.toThrow();
    expect(aptLog()).toBe('');
  });

  it('as root with apt-get, installs the missing packages non-interactively, then finds them', () => {
    const { path, aptLog } = fakePath(['tshark', 'tftp'], 'installs');
    const lines: string[] = [];
    ensureTools({ env: { PATH: path }, root: true, log: (l) => lines.push(l) });
    expect(aptLog().trim().split('\n')).toEqual(['noninteractive update -qq', 'noninteractive install -y -qq --no-install-recommends tshark tftp-hpa']);
    expect(lines).toEqual(['integration tests: installing tshark tftp-hpa (apt-get)']);
  });

  it('not as root, fails with one line naming the Debian packages and installs nothing', () => {
    const { path, aptLog } = fakePath(['tftp', 'atftp'], 'installs');
    let message = '';
    try {
      ensureTools({ env: { PATH: path }, root: false, log: () => {} });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe('integration tests need tftp (package tftp-hpa), atftp (not root, so not installed automatically): apt-get install tftp-hpa atftp');
    expect(aptLog()).toBe('');
  });

  it('says so when apt-get ran but the tool is still missing, or there is no apt-get', () => {
    const none = fakePath(['tshark'], 'installs nothing');
    expect(() => ensureTools({ env: { PATH: none.path }, root: true, log: () => {} })).toThrow(
      /^integration tests need tshark \(still not on PATH after apt-get install\): apt-get install tshark$/,
    );
    const noApt = fakePath(['tshark']);
    expect(() => ensureTools({ env: { PATH: noApt.path }, root: true, log: () => {} })).toThrow(/^integration tests need tshark \(no apt-get here\)/);
  });
});
