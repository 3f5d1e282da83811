import { createServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AsapMessageType, ErrorCause, decodeAsapMessage, encodeAsapMessage, type AsapMessage } from '../../protocols/index.js';
import { createTcpTransport } from '../../lib/transport/index.js';
import { runCli, startCli, type CliProcess } from './run.js';

const KEEP_ALIVE_MS = 500;
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

async function resolveIds(registrar: string): Promise<{ code: number | null; ids: number[]; stderr: string }> {
  const r = await runCli(['resolve', 'files', '--registrar', registrar, '--json', '--items', '16']);
  const ids = r.code === 0 ? (JSON.parse(r.stdout) as { elements: { identifier: number }[] }).elements.map((e) => e.identifier).sort() : [];
  return { code: r.code, ids, stderr: r.stderr };
}

describe('rserpool registrar + register sidecar + resolve, as real processes on loopback', () => {
  it('resolves two sidecar PEs, drops one killed with -9 within keep-alive interval + timeout + 1 s, deregisters on graceful stop, refuses a third-party deregistration', async () => {
    const registrar = start([
      'registrar',
      '--asap',
      'tcp://127.0.0.2:0',
      '--http',
      '127.0.0.2:0',
      '--announce',
      'off',
      '--print-events',
      '--keep-alive-interval',
      `${KEEP_ALIVE_MS}ms`,
      '--keep-alive-timeout',
      `${KEEP_ALIVE_MS}ms`,
      // The last resolution must see the handle gone, not the just-started registrar's "try again".
      '--startup-grace',
      '0',
    ]);
    const [, asap, statusUrl] = await registrar.waitForLine(/^registrar 0x[0-9a-f]{8} asap (\S+) status (\S+)$/);
    const pe1 = start(['register', '--handle', 'files', '--transport', 'udp://127.0.0.1:6901', '--registrar', asap!, '--identifier', '0x1001']);
    const pe2 = start(['register', '--handle', 'files', '--transport', 'udp://127.0.0.1:6902', '--registrar', asap!, '--identifier', '0x1002']);
    await pe1.waitForLine(/^registered 0x00001001 under files/);
    await pe2.waitForLine(/^registered 0x00001002 under files/);

    expect((await resolveIds(asap!)).ids).toEqual([0x1001, 0x1002]);
    const status = (await (await fetch(statusUrl!)).json()) as { pools: { handle: string; elements: unknown[] }[] };
    expect(status.pools).toEqual([expect.objectContaining({ handle: 'files', elements: expect.any(Array) })]);
    expect(status.pools[0]!.elements).toHaveLength(2);

    // A third party (its own ASAP connection) may not deregister pe2.
    const conn = await createTcpTransport().connect(asap!);
    const reply = new Promise<AsapMessage>((resolve) => conn.once('message', (b) => resolve(decodeAsapMessage(b))));
    conn.send(encodeAsapMessage({ type: AsapMessageType.Deregistration, handle: new TextEncoder().encode('files'), identifier: 0x1002 }));
    const answer = await reply;
    await conn.close();
    expect(answer.type).toBe(AsapMessageType.DeregistrationResponse);
    expect(answer.type === AsapMessageType.DeregistrationResponse && answer.error?.map((c) => c.code)).toEqual([
      ErrorCause.RejectionDueToSecurityConsiderations,
    ]);
    expect((await resolveIds(asap!)).ids).toEqual([0x1001, 0x1002]);

    // kill -9: no deregistration; the registrar's keep-alive supervision removes it.
    const killedAt = performance.now();
    pe1.kill('SIGKILL');
    await registrar.waitForLine(/^pe-removed 0x00001001 files keep-alive-timeout$/, 2 * KEEP_ALIVE_MS + 1000);
    expect(performance.now() - killedAt).toBeLessThanOrEqual(2 * KEEP_ALIVE_MS + 1000);
    expect((await resolveIds(asap!)).ids).toEqual([0x1002]);

    // Graceful stop deregisters at once.
    pe2.kill('SIGTERM');
    await pe2.waitForLine(/^deregistered 0x00001002 \(stopped by SIGTERM\)$/);
    await registrar.waitForLine(/^pe-deregistered 0x00001002 files$/, 1000);
    expect(await pe2.exited).toBe(0);
    const after = await resolveIds(asap!);
    expect(after.code).toBe(1);
    expect(after.stderr).toMatch(/RSP_ERR_UNKNOWN_POOL_HANDLE/);
  });

  it('the sidecar deregisters its server while the health check fails and registers it again when it passes', async () => {
    const server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    const registrar = start(['registrar', '--asap', 'tcp://127.0.0.2:0', '--http', 'off', '--announce', 'off', '--print-events']);
    const [, asap] = await registrar.waitForLine(/^registrar 0x[0-9a-f]{8} asap (\S+)$/);
    const pe = start([
      'register',
      '--handle',
      'files',
      '--transport',
      `tcp://127.0.0.1:${port}`,
      '--registrar',
      asap!,
      '--identifier',
      '7',
      '--health-check',
      `tcp://127.0.0.1:${port}`,
      '--health-interval',
      '100ms',
      '--health-failures',
      '2',
    ]);
    await pe.waitForLine(/^registered 0x00000007 under files/);
    await new Promise<void>((r) => server.close(() => r()));
    await pe.waitForLine(/^deregistered 0x00000007 \(health check failed 2 times\)$/);
    await registrar.waitForLine(/^pe-deregistered 0x00000007 files$/);
    expect((await resolveIds(asap!)).code).toBe(1);
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
    await pe.waitForLine(/^health check passes again$/);
    await pe.waitForLine(/^registered 0x00000007 under files/);
    expect((await resolveIds(asap!)).ids).toEqual([7]);
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('a sidecar started before its registrar keeps trying, says so, and registers once the registrar is up', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.2', () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const asap = `tcp://127.0.0.2:${port}`;
    const pe = start(['register', '--handle', 'files', '--transport', 'udp://127.0.0.1:6903', '--registrar', asap, '--identifier', '0x1003']);
    await pe.waitForLine(/^no registrar accepted the registration yet \(tcp:\/\/127\.0\.0\.2:\d+\).*still trying$/, 20_000);
    const registrar = start(['registrar', '--asap', asap, '--http', 'off', '--announce', 'off', '--print-events']);
    await registrar.waitForLine(/^registrar 0x[0-9a-f]{8} asap /);
    await pe.waitForLine(/^registered 0x00001003 under files/, 20_000);
    expect((await resolveIds(asap)).ids).toEqual([0x1003]);
  });

  it('health checks do not pile up listeners (no MaxListenersExceededWarning after 30 checks)', async () => {
    let checks = 0;
    let reached: () => void = () => {};
    const thirty = new Promise<void>((r) => (reached = r));
    const server = createServer((s) => {
      s.destroy();
      if (++checks === 30) reached();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    const registrar = start(['registrar', '--asap', 'tcp://127.0.0.2:0', '--http', 'off', '--announce', 'off']);
    const [, asap] = await registrar.waitForLine(/^registrar 0x[0-9a-f]{8} asap (\S+)$/);
    const pe = start([
      'register',
      '--handle',
      'files',
      '--transport',
      `tcp://127.0.0.1:${port}`,
      '--registrar',
      asap!,
      '--health-check',
      `tcp://127.0.0.1:${port}`,
      '--health-interval',
      '10ms',
    ]);
    await thirty;
    pe.kill('SIGTERM');
    await pe.exited;
    await new Promise<void>((r) => server.close(() => r()));
    expect(pe.output()).toMatch(/deregistered 0x[0-9a-f]{8} \(stopped by SIGTERM\)/);
    expect(pe.output()).not.toMatch(/MaxListenersExceededWarning/);
  });

  it('a PE paused past its keep-alive timeout is back in the pool within 2 s of resuming, not at its next re-registration', async () => {
    const registrar = start([
      'registrar',
      '--asap',
      'tcp://127.0.0.2:0',
      '--http',
      'off',
      '--announce',
      'off',
      '--print-events',
      '--keep-alive-interval',
      '300ms',
      '--keep-alive-timeout',
      '300ms',
    ]);
    const [, asap] = await registrar.waitForLine(/^registrar 0x[0-9a-f]{8} asap (\S+)$/);
    const pe = start(['register', '--handle', 'files', '--transport', 'udp://127.0.0.1:6904', '--registrar', asap!, '--identifier', '0x1004', '--life', '60s']);
    await pe.waitForLine(/^registered 0x00001004 under files/);
    process.kill(pe.pid, 'SIGSTOP');
    try {
      await registrar.nextLine(/^pe-removed 0x00001004 files keep-alive-timeout$/, 5_000);
    } finally {
      process.kill(pe.pid, 'SIGCONT');
    }
    const back = registrar.nextLine(/^pe-registered 0x00001004 files /, 2_000);
    await back;
    expect((await resolveIds(asap!)).ids).toEqual([0x1004]);
  });

  it('refuses bad flags with a one-line error and exit 2', async () => {
    const r = await runCli(['register', '--handle', 'files', '--transport', 'udp://127.0.0.1:99999']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--transport takes PROTOCOL:\/\/ADDRESS:PORT/);
    const p = await runCli(['registrar', '--keep-alive-interval', 'soon']);
    expect(p.code).toBe(2);
    expect(p.stderr).toMatch(/--keep-alive-interval takes a duration/);
    const u = await runCli(['resolve', 'files', '--bogus']);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/Unknown option '--bogus'/);
  });
});
