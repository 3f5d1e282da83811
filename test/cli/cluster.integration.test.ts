/**
 * A registrar cluster and its PEs as real processes on one host, once per
 * transport (tcp://, sctp+udp://, and sctp:// as root): registrars on
 * 127.0.0.2-4; kill -9 of a registrar and of a PE. Failure detection is
 * ASAP/ENRP's own (keep-alives, peer heartbeats): nothing here waits for the
 * transport to notice a dead peer.
 */
import { afterEach, expect, it } from 'vitest';
import { describeSctp } from '../support/raw-sctp.js';
import { runCli, startCli, type CliProcess } from './run.js';

const schemes = ['tcp', 'sctp+udp', 'sctp'] as const;

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

const TIMERS = [
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
];
const WAIT = 20_000;

interface NodeStatus {
  pools: { handle: string; elements: { identifier: number; homeRegistrarId: number }[] }[];
}

async function elements(url: string): Promise<string[]> {
  const s = (await (await fetch(url)).json()) as NodeStatus;
  return s.pools.flatMap((p) => p.elements.map((e) => `${p.handle}/${e.identifier.toString(16)}@${e.homeRegistrarId}`)).sort();
}

async function resolved(registrar: string): Promise<number[]> {
  const r = await runCli(['resolve', 'files', '--registrar', registrar, '--items', '16', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { elements: { identifier: number }[] }).elements.map((e) => e.identifier).sort((a, b) => a - b);
}

for (const scheme of schemes) {
  describeSctp(scheme, `a registrar cluster and its PEs over ${scheme}:// as real processes on one host`, () => {
    it(
      'kill -9 of a registrar: its PEs stay resolvable from the survivors, which agree; kill -9 of a PE: its home removes it by keep-alive',
      { timeout: 90_000 },
      async () => {
        const base = 20000 + Math.floor(Math.random() * 20000);
        const hosts = [2, 3, 4];
        const enrp = (h: number): string => `${scheme}://127.0.0.${h}:${base + 1}`;
        const asap = (h: number): string => `${scheme}://127.0.0.${h}:${base}`;
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
            '--http',
            `127.0.0.${h}:${base + 2}`,
            '--announce',
            'off',
            '--enrp-multicast',
            'off',
            '--print-events',
            '--keep-alive-interval',
            '500ms',
            '--keep-alive-timeout',
            '500ms',
            ...TIMERS,
          ]),
        );
        const statusUrl = (h: number): string => `http://127.0.0.${h}:${base + 2}/status`;
        for (const [i, n] of nodes.entries()) {
          const [line] = await n.waitForLine(/^registrar .*/, WAIT);
          expect(line).toContain(`asap ${asap(hosts[i]!)} enrp ${enrp(hosts[i]!)}`);
        }
        for (const n of nodes) await n.waitForLine(/^synchronised$/, WAIT);

        // Two PEs homed at each registrar; each knows the others to hunt.
        const pes = new Map<number, CliProcess>();
        for (const h of hosts) {
          for (const k of [1, 2]) {
            const id = h * 0x100 + k;
            const registrars = [h, ...hosts.filter((o) => o !== h)].flatMap((o) => ['--registrar', asap(o)]);
            pes.set(id, start(['register', '--handle', 'files', '--transport', `udp://127.0.0.1:${7000 + id}`, '--identifier', String(id), ...registrars]));
          }
        }
        // One more at registrar 3 that knows no other registrar: only a takeover's H-bit
        // keep-alive, to the ASAP port it listens on, can give it a new home.
        const loyal = start([
          'register',
          '--handle',
          'files',
          '--transport',
          'udp://127.0.0.1:7999',
          '--identifier',
          String(0x309),
          '--registrar',
          asap(3),
          '--asap-listen',
          `${scheme}://127.0.0.1:0`,
        ]);
        for (const p of [...pes.values(), loyal]) await p.waitForLine(/^registered /, WAIT);
        const all = [...pes.keys(), 0x309].sort((a, b) => a - b);
        // Every registrar sees all, each homed where it registered (ENRP updates are sent before
        // each registration response, and the sidecars printed theirs).
        for (const h of hosts) expect(await elements(statusUrl(h))).toEqual(all.map((id) => `files/${id.toString(16)}@${id >> 8}`).sort());

        // kill -9 the registrar on 127.0.0.3. Its PEs are either taken over by a survivor
        // (ENRP takeover) or re-register at another registrar first (their hunt); both are right.
        nodes[1]!.kill('SIGKILL');
        await nodes[1]!.exited;
        const survivors = [nodes[0]!, nodes[2]!];
        await Promise.all(survivors.map((n) => n.waitForLine(/^peer-down 0x00000003 /, WAIT)));
        const taken = Promise.any(survivors.map((n) => n.waitForLine(/^takeover 0x00000003 /, WAIT)));
        await Promise.all([0x301, 0x302].map((id) => Promise.any([pes.get(id)!.waitForLine(/^home registrar now /, WAIT), taken])));
        await loyal.waitForLine(/^home registrar now .*\(inbound\)/, WAIT);
        for (const h of [2, 4]) expect(await resolved(asap(h))).toEqual(all);

        // The survivors agree; a change still in flight between them shows as an event line on one of them.
        const agreed = async (): Promise<string[]> => {
          let [a, b] = await Promise.all([elements(statusUrl(2)), elements(statusUrl(4))]);
          for (let round = 0; round < 10 && a.join() !== b.join(); round++) {
            await Promise.any(survivors.map((n) => n.nextLine(/^(pe-|takeover|peer-)/, 1_000))).catch(() => undefined);
            [a, b] = await Promise.all([elements(statusUrl(2)), elements(statusUrl(4))]);
          }
          expect(a).toEqual(b);
          return a;
        };
        // Registrar 3's PEs now have one home each among the survivors, the same on both.
        const homesOf3 = (await agreed()).filter((e) => /\/30[129]@/.test(e)).map((e) => Number(e.split('@')[1]));
        expect(homesOf3).toHaveLength(3);
        for (const home of homesOf3) expect([2, 4]).toContain(home);

        // kill -9 a PE homed at 127.0.0.2: its home's keep-alive finds it gone, and the survivors agree.
        pes.get(0x201)!.kill('SIGKILL');
        await pes.get(0x201)!.exited;
        await nodes[0]!.waitForLine(/^pe-removed 0x00000201 files keep-alive-timeout$/, WAIT);
        const rest = all.filter((id) => id !== 0x201);
        expect(await resolved(asap(2))).toEqual(rest);
        expect((await agreed()).map((e) => parseInt(e.split('/')[1]!, 16)).sort((a, b) => a - b)).toEqual(rest);
        expect(await resolved(asap(4))).toEqual(rest);
      },
    );
  });
}
