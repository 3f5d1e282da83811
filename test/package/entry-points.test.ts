/**
 * `import 'rserpool'` loads neither the `sctp` package nor prom-client:
 * they come with `rserpool/sctp` and `rserpool/metrics`, or with the first
 * use of an sctp URL. Each case runs in its own process, whose module cache
 * is the evidence (both packages are CommonJS, so they show in require.cache).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Imports `entry` from source, runs `then`, and reports which of the heavy packages each `report()` found loaded. */
function loaded(entry: string, then = 'report();'): string[][] {
  const code = `
    import { createRequire } from 'node:module';
    const cache = createRequire(process.cwd() + '/').cache;
    const report = () => {
      const names = new Set();
      for (const k of Object.keys(cache)) {
        const m = /node_modules[\\\\/](sctp|prom-client)[\\\\/]/.exec(k);
        if (m) names.add(m[1]);
      }
      console.log(JSON.stringify([...names].sort()));
    };
    const mod = await import(${JSON.stringify(entry)});
    ${then}`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, encoding: 'utf8', timeout: 20_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as string[]);
}

describe('entry points', () => {
  it('the core entry point loads neither sctp nor prom-client', () => {
    expect(loaded('./lib/index.ts')).toEqual([[]]);
  });

  it('rserpool/sctp and rserpool/metrics load their package', () => {
    expect(loaded('./lib/sctp.ts', 'report(); if (typeof mod.createSctpUdpTransport !== "function") process.exit(3);')).toEqual([['sctp']]);
    expect(loaded('./lib/metrics.ts', 'report(); if (typeof mod.createRegistrarMetrics !== "function") process.exit(3);')).toEqual([['prom-client']]);
  });

  it('createTransports loads SCTP at the first use of an sctp+udp URL, and it works', () => {
    const then = `
      const transports = mod.createTransports({ 'sctp+udp': {} });
      report();
      const listener = await transports.listen('sctp+udp://127.0.0.1:0');
      const accepted = new Promise((resolve) => listener.on('connection', resolve));
      const conn = await transports.connect(listener.address);
      const server = await accepted;
      const got = new Promise((resolve) => server.on('message', (m) => resolve(m.length)));
      conn.send(new Uint8Array([0x01, 0x00, 0x00, 0x04]));
      if ((await got) !== 4) process.exit(3);
      await conn.close();
      await listener.close();
      report();`;
    expect(loaded('./lib/index.ts', then)).toEqual([[], ['sctp']]);
  });

  it('package.json exports each entry point the build produces from lib/', () => {
    const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { exports: Record<string, { import?: string }> };
    expect(pkg.exports['./sctp']?.import).toBe('./dist/lib/sctp.js');
    expect(pkg.exports['./metrics']?.import).toBe('./dist/lib/metrics.js');
    for (const target of Object.values(pkg.exports)) {
      if (typeof target === 'object' && target.import)
        expect(existsSync(`${root}${target.import.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts')}`)).toBe(true);
    }
  });
});
