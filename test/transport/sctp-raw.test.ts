/**
 * sctp:// on raw IPv4. As root with raw-socket built, the compliance suite and
 * the several-processes-on-one-host cases run; otherwise the transport must
 * refuse with its typed error (and these tests say so).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { describeSctp } from '../support/raw-sctp.js';
import { createSctpTransport } from '../../lib/transport/sctp.js';
import type { Connection, TransportUrl } from '../../lib/transport/types.js';
import { runTransportCompliance } from './compliance.js';
import { seqOf, testMessage, waitFor, withDeadline } from './util.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** A process of its own running `body` (ESM, top-level await) with `t` a sctp:// transport; resolves with the first line matching `ready`. */
function child(body: string, ready: RegExp): { proc: ChildProcess; line: Promise<RegExpExecArray>; lines: () => string } {
  const code = `const { createSctpTransport } = await import('./lib/transport/sctp.js'); const t = createSctpTransport(); ${body}`;
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const line = withDeadline(
    new Promise<RegExpExecArray>((resolve, reject) => {
      proc.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = ready.exec(out);
        if (m) resolve(m);
      });
      proc.once('exit', (code) => reject(new Error(`child exited (${code}): ${out}${err}`)));
    }),
    20_000,
    `child line ${ready}`,
  );
  return { proc, line, lines: () => out };
}

const ECHO = `
  const l = await t.listen(process.env.URL ?? 'sctp://127.0.0.1:0');
  l.on('connection', (c) => c.on('message', (m, p) => c.send(m, p)));
  console.log('listening ' + l.address.port);
`;

function killed(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGKILL');
  return exited;
}

describeSctp('sctp', 'sctp (raw IP)', () => {
  runTransportCompliance('sctp (raw IP)', { perMessagePpid: true, rawConnect: false }, () => ({
    transport: (init, components) => createSctpTransport(init, components),
    listenUrl: 'sctp://127.0.0.1:0',
    perMessagePpid: true,
  }));

  describe('sctp transport: several processes on one host', () => {
    const procs: ChildProcess[] = [];
    const conns: Connection[] = [];
    afterEach(async () => {
      for (const c of conns.splice(0)) c.abort();
      for (const p of procs.splice(0)) await killed(p);
    });

    function echo(url?: string): { proc: ChildProcess; port: Promise<number> } {
      const c = child(url ? `process.env.URL = ${JSON.stringify(url)}; ${ECHO}` : ECHO, /listening (\d+)/);
      procs.push(c.proc);
      return { proc: c.proc, port: c.line.then((m) => Number(m[1])) };
    }

    async function roundTrip(url: TransportUrl | string, seq: number): Promise<Connection> {
      const c = await createSctpTransport().connect(url);
      conns.push(c);
      const got = waitFor(c, 'message');
      c.send(testMessage(32, seq));
      expect(seqOf((await got)[0])).toBe(seq);
      return c;
    }

    it("processes own their ports: a second listener elsewhere is refused, and every process ignores the others' packets", async () => {
      const a = echo();
      const b = echo();
      const [pa, pb] = await Promise.all([a.port, b.port]);
      expect(pa).not.toBe(pb);
      await expect(createSctpTransport().listen(`sctp://127.0.0.1:${pa}`)).rejects.toMatchObject({ code: 'RSP_ERR_ADDRESS_IN_USE' });
      // 20 clients in this process and 20 in another, all to a: no two share a port, none is aborted by a bystander.
      const others = child(
        `const cs = await Promise.all(Array.from({ length: 20 }, () => t.connect('sctp://127.0.0.1:${pa}')));
         const echoed = await Promise.all(cs.map((c, i) => new Promise((r) => { c.once('message', (m) => r(m.readUInt32BE(4) === i)); c.send(Buffer.from([1, 0, 0, 8, 0, 0, 0, i])); })));
         console.log('done ' + echoed.every(Boolean) + ' ' + cs.map((c) => c.local.port).join(','));`,
        /done (\w+) ([\d,]+)/,
      );
      procs.push(others.proc);
      const mine = await Promise.all(Array.from({ length: 20 }, (_, i) => roundTrip(`sctp://127.0.0.1:${pa}`, i)));
      const [, ok, theirPorts] = await others.line;
      expect(ok).toBe('true');
      const ports = [...mine.map((c) => c.local.port), ...theirPorts!.split(',').map(Number)];
      expect(new Set(ports).size).toBe(40);
      expect(mine.every((c) => c.status === 'open')).toBe(true);
      await roundTrip(`sctp://127.0.0.1:${pb}`, 99);
    });

    it('kill -9 of a listening process frees its port: a connect there is refused at once, other associations carry on', async () => {
      const a = echo();
      const b = echo();
      const [pa, pb] = await Promise.all([a.port, b.port]);
      const toB = await roundTrip(`sctp://127.0.0.1:${pb}`, 1);
      await roundTrip(`sctp://127.0.0.1:${pa}`, 2);
      await killed(a.proc);
      const start = performance.now();
      await expect(createSctpTransport().connect(`sctp://127.0.0.1:${pa}`)).rejects.toMatchObject({ code: 'RSP_ERR_CONNECTION_REFUSED' });
      expect(performance.now() - start).toBeLessThan(2_000);
      const got = waitFor(toB, 'message');
      toB.send(testMessage(32, 3));
      expect(seqOf((await got)[0])).toBe(3);
      // The port is free for a new process.
      const again = echo(`sctp://127.0.0.1:${pa}`);
      expect(await again.port).toBe(pa);
      await roundTrip(`sctp://127.0.0.1:${pa}`, 4);
    });
  });
});

describe('sctp transport: where raw IP is not available', () => {
  it('refuses an IPv6 address with a typed error', async () => {
    await expect(createSctpTransport().listen('sctp://[::1]:0')).rejects.toMatchObject({ code: 'RSP_ERR_SCTP_UNAVAILABLE' });
    await expect(createSctpTransport().connect('sctp://[::1]:3863')).rejects.toMatchObject({ code: 'RSP_ERR_SCTP_UNAVAILABLE' });
  });

  it('refuses, with a typed error naming sctp+udp://, to run without root', () => {
    const code = `const { createSctpTransport } = await import('./lib/transport/sctp.js');
      for (const op of [(t) => t.listen('sctp://127.0.0.1:0'), (t) => t.connect('sctp://127.0.0.1:3863')]) {
        try { await op(createSctpTransport()); console.log('no error'); } catch (e) { console.log(e.code + ' ' + e.message); }
      }`;
    const asRoot = process.getuid?.() === 0;
    // As root, run the check as nobody; otherwise this process is already unprivileged.
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: root,
      encoding: 'utf8',
      timeout: 30_000,
      ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
    });
    const lines = r.stdout.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(2);
    for (const line of lines) {
      expect(line).toMatch(/^RSP_ERR_SCTP_UNAVAILABLE /);
      expect(line).toContain('sctp+udp://');
    }
  });
});
