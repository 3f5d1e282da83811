/**
 * The insecure cluster's story over TLS-PSK with an ACL, as real processes:
 * three registrars (127.0.0.2-4) that authenticate each other, three TFTP PEs
 * allowed only under `files`, a client that downloads 100 MB across a kill -9
 * of its PE, then a registrar killed and its PEs taken over.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli, startCli, type CliProcess } from './run.js';
import { sha256Of } from '../support/files.js';

const SIZE = 100_000_000;
const WAIT = 30_000;
const hosts = [2, 3, 4];
const peIds = ['0x0000e001', '0x0000e002', '0x0000e003'];
const dir = mkdtempSync(join(tmpdir(), 'rserpool-secure-'));
const root = join(dir, 'root');
const keys: Record<string, string> = {};
let wantSha = '';
const procs: CliProcess[] = [];

beforeAll(() => {
  mkdirSync(root);
  const data = randomBytes(SIZE);
  writeFileSync(join(root, 'big.bin'), data);
  wantSha = createHash('sha256').update(data).digest('hex');
  for (const id of [...hosts.map((h) => `reg-${h}`), 'pe-1', 'pe-2', 'pe-3', 'client']) keys[id] = randomBytes(32).toString('hex');
  writeFileSync(
    join(dir, 'keys'),
    Object.entries(keys)
      .map(([id, k]) => `${id}:${k}\n`)
      .join(''),
  );
  writeFileSync(
    join(dir, 'acl.yaml'),
    [
      'rules:',
      ...hosts.flatMap((h) => [`  - identity: reg-${h}`, '    roles: [registrar]', `    serverIds: [${h}]`]),
      '  - identity: "pe-*"',
      '    roles: [pe, pu]',
      '    handles: [files]',
      '  - identity: client',
      '    roles: [pu]',
      '    handles: ["*"]',
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  rmSync(dir, { recursive: true, force: true });
});

function start(args: string[]): CliProcess {
  const p = startCli(args);
  procs.push(p);
  return p;
}

const psk = (id: string): string[] => ['--tls-psk', `${id}:${keys[id]}`];

it('a TLS cluster with an ACL: PEs register, a download survives kill -9 of its PE, a killed registrar is taken over', { timeout: 180_000 }, async () => {
  const base = 20000 + Math.floor(Math.random() * 20000);
  const asap = (h: number): string => `tls://127.0.0.${h}:${base}`;
  const enrp = (h: number): string => `tls://127.0.0.${h}:${base + 1}`;
  const nodes = hosts.map((h) =>
    start([
      'registrar',
      '--id',
      String(h),
      '--asap',
      asap(h),
      '--enrp',
      enrp(h),
      ...hosts.filter((o) => o !== h).flatMap((o) => ['--peer', enrp(o)]),
      ...psk(`reg-${h}`),
      '--tls-psk-file',
      join(dir, 'keys'),
      '--acl',
      join(dir, 'acl.yaml'),
      '--http',
      'off',
      '--announce',
      'off',
      '--enrp-multicast',
      'off',
      '--print-events',
      '--keep-alive-interval',
      '500ms',
      '--keep-alive-timeout',
      '500ms',
      '--peer-heartbeat',
      '200ms',
      '--max-last-heard',
      '600ms',
      '--max-no-response',
      '400ms',
      '--takeover-expiry',
      '400ms',
      '--mentor-discovery',
      '1s',
    ]),
  );
  for (const n of nodes) await n.waitForLine(/^synchronised$/, WAIT);

  // One PE homed at each registrar, each knowing all three.
  const pes = new Map<string, CliProcess>();
  for (const [i, id] of peIds.entries()) {
    const order = [hosts[i]!, ...hosts.filter((_, k) => k !== i)];
    const pe = start([
      'tftp',
      'serve',
      '--root',
      root,
      ...order.flatMap((h) => ['--registrar', asap(h)]),
      ...psk(`pe-${i + 1}`),
      '--port',
      '0',
      '--secret',
      'secure cluster test pool secret',
      '--identifier',
      id,
    ]);
    pes.set(id, pe);
  }
  for (const [id, pe] of pes) await pe.waitForLine(new RegExp(`^serving .* as PE ${id} under files$`), WAIT);

  // ENRP over TLS replicated every PE to every registrar.
  for (const h of hosts) expect(await listedEventually(asap(h), peIds)).toEqual(ids(peIds));

  // A PE identity may not register under another handle; a stranger's key gets nowhere.
  const squatter = await runCli(['register', '--registrar', asap(2), ...psk('pe-1'), '--handle', 'other', '--transport', 'udp://127.0.0.1:7001'], {
    timeoutMs: 30_000,
  });
  expect(squatter.code).not.toBe(0);
  expect(squatter.stderr).toMatch(/security|not authorized/i);
  const stranger = await runCli(['resolve', 'files', '--registrar', asap(2), '--tls-psk', `client:${randomBytes(32).toString('hex')}`]);
  expect(stranger.code).not.toBe(0);

  // Download with kill -9 of the serving PE half-way.
  const out = join(dir, 'got.bin');
  const registrars = hosts.flatMap((h) => ['--registrar', asap(h)]);
  const get = start(['tftp', 'get', 'files:/big.bin', '-o', out, ...registrars, ...psk('client'), '--json', '--progress-interval', '50ms']);
  const [, servingId] = await get.waitForLine(/^progress: .*\((?:[5-9]\d)%\).*PE (0x[0-9a-f]{8})$/, 60_000);
  pes.get(servingId!)!.kill('SIGKILL');
  const [, from, to, stall] = await get
    .waitForLine(/^failover: PE (0x[0-9a-f]{8}) -> (0x[0-9a-f]{8}) at block \d+, stall (\d+) ms$/, WAIT)
    .catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\n${get.output().slice(-2000)}`);
    });
  expect([from, to === servingId]).toEqual([servingId, false]);
  expect(Number(stall)).toBeLessThan(1_000);
  await get.waitForLine(/^\{.*\}$/, 60_000);
  expect(await get.exited).toBe(0);
  expect(await sha256Of(out)).toBe(wantSha);

  // kill -9 a registrar that homes a live PE: a survivor takes it over and both survivors list it.
  const victim = hosts.find((_, i) => peIds[i] !== servingId)!;
  nodes[hosts.indexOf(victim)]!.kill('SIGKILL');
  const survivors = nodes.filter((_, i) => hosts[i] !== victim);
  await Promise.all(survivors.map((n) => n.waitForLine(new RegExp(`^peer-down 0x0000000${victim} `), WAIT)));
  const alive = peIds.filter((id) => id !== servingId);
  // Until takeover or the PE's own re-registration settles, a survivor may still list the dead PE.
  for (const h of hosts.filter((o) => o !== victim)) expect(await listedEventually(asap(h), alive)).toEqual(ids(alive));
});

const ids = (list: string[]): number[] => list.map((id) => Number(id)).sort((a, b) => a - b);

/** The PEs `registrar` lists for `files` once it lists as many as `want` (or at the deadline). */
async function listedEventually(registrar: string, want: string[]): Promise<number[]> {
  let listed: number[] = [];
  const deadline = Date.now() + WAIT;
  while (Date.now() < deadline) {
    const r = await runCli(['resolve', 'files', '--registrar', registrar, ...psk('client'), '--items', '16', '--json']);
    expect(r.code, r.stderr).toBe(0);
    listed = (JSON.parse(r.stdout) as { elements: { identifier: number }[] }).elements.map((e) => e.identifier).sort((a, b) => a - b);
    if (listed.length === want.length) break;
  }
  return listed;
}
