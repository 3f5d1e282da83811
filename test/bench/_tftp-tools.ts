/**
 * The third-party TFTP programs the tftp bench compares against, fetched
 * when missing: the servers tftpd-hpa and atftpd (their packages conflict,
 * so neither is installed: each is unpacked with `dpkg -x` into the cache),
 * and the clients tftp-hpa and atftp (used from PATH when installed).
 * Idempotent: a package unpacked once is not fetched again.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface TftpTools {
  /** Binary paths; absent when unavailable (see `missing`). */
  tftpdHpa?: string;
  atftpd?: string;
  curl?: string;
  tftpHpa?: string;
  atftp?: string;
  /** LD_LIBRARY_PATH for binaries run from the cache (their libraries may be unpacked beside them). */
  env: NodeJS.ProcessEnv;
  /** Why a tool is unavailable, one line each. */
  missing: string[];
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      if (statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

function run(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function errorText(err: unknown): string {
  const e = err as { stderr?: string; message?: string };
  const text = (e.stderr && e.stderr.trim()) || e.message || String(err);
  return text
    .split('\n')
    .filter((l) => !l.startsWith('W: '))
    .slice(-2)
    .join(' / ');
}

function installed(pkg: string): boolean {
  try {
    return run('dpkg-query', ['-W', '-f=${db:Status-Status}', pkg]).trim() === 'installed';
  } catch {
    return false;
  }
}

/** Non-virtual packages `pkg` depends on (the first of each alternative). */
function dependsOf(pkg: string): string[] {
  const out = run('apt-cache', [
    'depends',
    '--no-recommends',
    '--no-suggests',
    '--no-conflicts',
    '--no-breaks',
    '--no-replaces',
    '--no-enhances',
    '--no-pre-depends',
    pkg,
  ]);
  const deps: string[] = [];
  let alternative = false;
  for (const line of out.split('\n')) {
    const m = /^\s+(\|)?Depends: (\S+)/.exec(line);
    if (!m) continue;
    const name = m[2]!;
    // A line after one starting with '|' is an alternative to it: the first is enough.
    if (!alternative && !name.startsWith('<')) deps.push(name.replace(/:any$/, ''));
    alternative = m[1] === '|';
  }
  return deps;
}

class Cache {
  private updated = false;
  constructor(
    readonly dir: string,
    private readonly log: (line: string) => void,
  ) {}

  pkgDir(pkg: string): string {
    return join(this.dir, 'pkg', pkg);
  }

  /** Downloads (apt-get download, no root needed) and unpacks `pkg` and its missing dependencies. */
  unpack(pkg: string): void {
    const target = this.pkgDir(pkg);
    const done = join(target, '.unpacked');
    if (existsSync(done)) return;
    const debs = join(this.dir, 'debs');
    mkdirSync(debs, { recursive: true });
    this.log(`tftp: fetching ${pkg} into ${target}`);
    this.download(pkg, debs);
    const deb = readdirSync(debs).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${pkg} left no .deb in ${debs}`);
    rmSync(target, { recursive: true, force: true });
    mkdirSync(target, { recursive: true });
    run('dpkg', ['-x', join(debs, deb), target]);
    writeFileSync(done, `${deb}\n`);
    for (const dep of dependsOf(pkg)) if (!installed(dep)) this.unpack(dep);
  }

  private download(pkg: string, cwd: string): void {
    try {
      run('apt-get', ['download', pkg], cwd);
    } catch (err) {
      if (this.updated) throw err;
      // A stale or empty package list: refresh once and retry.
      this.log(`tftp: apt-get download ${pkg} failed (${errorText(err)}); running apt-get update`);
      run('apt-get', ['update']);
      this.updated = true;
      run('apt-get', ['download', pkg], cwd);
    }
  }

  /** Library folders of everything unpacked, for LD_LIBRARY_PATH. */
  libraryPath(): string[] {
    const dirs: string[] = [];
    const pkgs = join(this.dir, 'pkg');
    if (!existsSync(pkgs)) return dirs;
    for (const pkg of readdirSync(pkgs)) {
      for (const base of ['lib', 'usr/lib']) {
        const d = join(pkgs, pkg, base);
        if (!existsSync(d)) continue;
        dirs.push(d);
        for (const sub of readdirSync(d)) if (/-linux-gnu/.test(sub)) dirs.push(join(d, sub));
      }
    }
    return dirs;
  }
}

/** Fails with the loader's complaint when a binary cannot start (a shared library missing, say). */
function checkRuns(bin: string, env: NodeJS.ProcessEnv): void {
  let out: string;
  try {
    out = execFileSync('ldd', [bin], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    return; // no ldd (or a static binary): let the run itself tell
  }
  const lost = out.split('\n').filter((l) => l.includes('not found'));
  if (lost.length > 0) throw new Error(`${bin}: ${lost.map((l) => l.trim()).join(', ')}`);
}

/**
 * Finds or fetches the tools into `cacheDir`. Never throws: what cannot be
 * had is listed in `missing` and its figures are left out.
 */
export function ensureTftpTools(cacheDir: string, log: (line: string) => void): TftpTools {
  const cache = new Cache(cacheDir, log);
  const missing: string[] = [];
  const found: Partial<Record<'tftpdHpa' | 'atftpd' | 'curl' | 'tftpHpa' | 'atftp', string>> = {};
  const want: Array<{ key: keyof typeof found; pkg: string; bin: string; fromPath: boolean }> = [
    // The servers always come from the cache: the two packages cannot both be installed.
    { key: 'tftpdHpa', pkg: 'tftpd-hpa', bin: 'usr/sbin/in.tftpd', fromPath: false },
    { key: 'atftpd', pkg: 'atftpd', bin: 'usr/sbin/atftpd', fromPath: false },
    { key: 'tftpHpa', pkg: 'tftp-hpa', bin: 'usr/bin/tftp', fromPath: true },
    { key: 'atftp', pkg: 'atftp', bin: 'usr/bin/atftp', fromPath: true },
  ];
  for (const w of want) {
    const name = w.bin.split('/').pop()!;
    const system = w.fromPath ? onPath(name) : undefined;
    if (system) {
      found[w.key] = system;
      continue;
    }
    try {
      cache.unpack(w.pkg);
      const p = join(cache.pkgDir(w.pkg), w.bin);
      if (!existsSync(p)) throw new Error(`package ${w.pkg} has no ${w.bin}`);
      found[w.key] = p;
    } catch (err) {
      missing.push(`${w.pkg}: ${errorText(err)}`);
    }
  }
  const curl = onPath('curl');
  if (curl) found.curl = curl;
  else missing.push('curl: not on PATH (install it: apt-get install curl)');

  const libs = cache.libraryPath();
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (libs.length > 0) env.LD_LIBRARY_PATH = [...libs, ...(process.env.LD_LIBRARY_PATH ? [process.env.LD_LIBRARY_PATH] : [])].join(delimiter);
  for (const key of Object.keys(found) as Array<keyof typeof found>) {
    try {
      checkRuns(found[key]!, env);
    } catch (err) {
      missing.push(errorText(err));
      delete found[key];
    }
  }
  return { ...found, env, missing };
}
