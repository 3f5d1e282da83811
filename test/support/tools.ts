/**
 * Global setup of the integration tests: the programs they run (Wireshark's
 * tshark, the real TFTP clients, curl, openssl, python3, chromium) are found on PATH,
 * or installed from Debian's packages when this runs as root with apt-get;
 * otherwise the run stops with one line naming the packages.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Program on PATH -> the Debian package that brings it. */
export const TOOLS: Readonly<Record<string, string>> = {
  tshark: 'tshark',
  curl: 'curl',
  tftp: 'tftp-hpa',
  atftp: 'atftp',
  openssl: 'openssl',
  python3: 'python3',
  // The web page's browser test drives Debian's Chromium (playwright-core downloads no browser).
  chromium: 'chromium',
};

export function onPath(name: string, path: string | undefined): string | undefined {
  for (const dir of (path ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      if (statSync(p).isFile()) return p;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

export interface EnsureToolsOptions {
  env?: NodeJS.ProcessEnv;
  /** Whether apt-get may install (default: running as root). */
  root?: boolean;
  log?: (line: string) => void;
}

/** Finds or installs every tool; throws one line naming what is still missing. */
export function ensureTools(options: EnsureToolsOptions = {}): void {
  const env = options.env ?? process.env;
  const root = options.root ?? process.getuid?.() === 0;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const missing = (): string[] => Object.keys(TOOLS).filter((t) => !onPath(t, env.PATH));
  let absent = missing();
  if (absent.length === 0) return;
  const packages = [...new Set(absent.map((t) => TOOLS[t]!))];
  const aptGet = onPath('apt-get', env.PATH);
  let tried = '';
  if (root && aptGet) {
    log(`integration tests: installing ${packages.join(' ')} (apt-get)`);
    const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
    try {
      execFileSync(aptGet, ['update', '-qq'], { env: aptEnv, stdio: ['ignore', 'ignore', 'pipe'] });
      execFileSync(aptGet, ['install', '-y', '-qq', '--no-install-recommends', ...packages], { env: aptEnv, stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      const stderr = String((err as { stderr?: unknown }).stderr ?? '')
        .trim()
        .split('\n')
        .pop();
      tried = ` (apt-get install failed: ${stderr || (err as Error).message})`;
    }
    absent = missing();
    if (absent.length === 0) return;
    if (!tried) tried = ' (still not on PATH after apt-get install)';
  } else {
    tried = root ? ' (no apt-get here)' : ' (not root, so not installed automatically)';
  }
  const names = absent.map((t) => (t === TOOLS[t] ? t : `${t} (package ${TOOLS[t]})`)).join(', ');
  throw new Error(`integration tests need ${names}${tried}: apt-get install ${[...new Set(absent.map((t) => TOOLS[t]!))].join(' ')}`);
}

/** vitest globalSetup entry. */
export default function setup(): void {
  ensureTools();
}
