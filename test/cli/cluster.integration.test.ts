import { afterEach, describe, expect, it } from 'vitest';
import { runCli, startCli, type CliProcess } from './run.js';

const procs: CliProcess[] = [];
afterEach(async () => {
  for (const p of procs.splice(0)) {
    p.kill('SIGKILL');
    await p.exited;
  }
});

function start(args: string[]): CliProcess {
  const p = startCli(args);
  procs.push(p);
  return p;
}

const TIMERS = ['--peer-heartbeat', '200ms', '--max-last-heard', '600ms', '--max-no-response', '400ms', '--takeover-expiry', '400ms', '--mentor-discovery', '1s'];

interface NodeStatus {
  id: number;
  pools: { handle: string; elements: { identifier: number; homeRegistrarId: number }[] }[];
  peers: { id: number; state: string }[];
}

async function status(url: string): Promise<NodeStatus> {
  return (await (await fetch(url)).json()) as NodeStatus;
}

function elements(s: NodeStatus): string[] {
  return s.pools.flatMap((p) => p.elements.map((e) => `${p.handle}/${e.identifier.toString(16)}@${e.homeRegistrarId}`)).sort();
}

describe('a registrar cluster as real processes on 127.0.0.2-4', () => {
  it('every PE stays resolvable from every survivor after one registrar is killed with -9, and the survivors agree', async () => {
    const base = 20000 + Math.floor(Math.random() * 20000);
    const hosts = [2, 3, 4];
    const enrp = (h: number): string => `tcp://127.0.0.${h}:${base + 1}`;
    const asap = (h: number): string => `tcp://127.0.0.${h}:${base}`;
    const nodes = hosts.map((h) =>
      start([
        'registrar', '--id', String(h), '--asap', asap(h), '--enrp', enrp(h), ...hosts.filter((o) => o !== h).flatMap((o) => ['--peer', enrp(o)]),
        '--http', `127.0.0.${h}:${base + 2}`, '--announce', 'off', '--enrp-multicast', 'off', '--print-events',
        '--keep-alive-interval', '500ms', '--keep-alive-timeout', '500ms', ...TIMERS,
      ]),
    );
    const statusUrl = (h: number): string => `http://127.0.0.${h}:${base + 2}/status`;
    for (const n of nodes) await n.waitForLine(/^synchronised$/);

    // Two PEs homed at each registrar; each knows the others to hunt.
    const pes: CliProcess[] = [];
    for (const h of hosts) {
      for (const k of [1, 2]) {
        const id = h * 0x100 + k;
        const registrars = [h, ...hosts.filter((o) => o !== h)].flatMap((o) => ['--registrar', asap(o)]);
        pes.push(start(['register', '--handle', 'files', '--transport', `udp://127.0.0.1:${7000 + id}`, '--identifier', String(id), ...registrars]));
      }
    }
    // One more at registrar 3 that knows no other registrar: only a takeover's H-bit
    // keep-alive, to the ASAP port it listens on, can give it a new home.
    const loyal = start([
      'register', '--handle', 'files', '--transport', 'udp://127.0.0.1:7999', '--identifier', String(0x309),
      '--registrar', asap(3), '--asap-listen', 'tcp://127.0.0.1:0',
    ]);
    for (const p of [...pes, loyal]) await p.waitForLine(/^registered /);
    const all = [...hosts.flatMap((h) => [1, 2].map((k) => h * 0x100 + k)), 0x309].sort((a, b) => a - b);

    // Every registrar sees all six, each homed where it registered (ENRP updates are sent before
    // each registration response, and the sidecars printed theirs).
    for (const h of hosts) expect(elements(await status(statusUrl(h)))).toEqual(all.map((id) => `files/${id.toString(16)}@${id >> 8}`).sort());

    // kill -9 the registrar on 127.0.0.3. Its PEs are either taken over by a survivor
    // (ENRP takeover) or re-register at another registrar first (their hunt); both are right.
    const killedAt = performance.now();
    nodes[1]!.kill('SIGKILL');
    await nodes[1]!.exited;
    const survivors = [nodes[0]!, nodes[2]!];
    await Promise.all(survivors.map((n) => n.waitForLine(/^peer-down 0x00000003 /, 10_000)));
    const taken = Promise.any(survivors.map((n) => n.waitForLine(/^takeover 0x00000003 /, 10_000)));
    // Each of registrar 3's PEs: its sidecar found a new home, or a survivor took it over.
    await Promise.all(pes.slice(2, 4).map((p) => Promise.any([p.waitForLine(/^home registrar now /, 10_000), taken])));
    await loyal.waitForLine(/^home registrar now .*\(inbound\)/, 10_000);
    expect(performance.now() - killedAt).toBeLessThan(10_000);

    for (const h of [2, 4]) {
      const r = await runCli(['resolve', 'files', '--registrar', asap(h), '--items', '16', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const ids = (JSON.parse(r.stdout) as { elements: { identifier: number }[] }).elements.map((e) => e.identifier).sort((a, b) => a - b);
      expect(ids).toEqual(all);
    }
    // The survivors agree; a change still in flight between them shows as an event line on one of them.
    let [a, b] = await Promise.all([status(statusUrl(2)), status(statusUrl(4))]);
    for (let round = 0; round < 10 && elements(a).join() !== elements(b).join(); round++) {
      await Promise.any(survivors.map((n) => n.nextLine(/^(pe-|takeover|peer-)/, 1000))).catch(() => undefined);
      [a, b] = await Promise.all([status(statusUrl(2)), status(statusUrl(4))]);
    }
    expect(elements(a)).toEqual(elements(b));
    // Registrar 3's PEs now have one home each among the survivors, the same on both.
    const homesOf3 = elements(a).filter((e) => /\/30[129]@/.test(e)).map((e) => Number(e.split('@')[1]));
    expect(homesOf3).toHaveLength(3);
    for (const home of homesOf3) expect([2, 4]).toContain(home);
  });
});
