import type { Server } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startStatusServer, type StatusServer } from '../../lib/status/http.js';
import { withDeadline } from '../transport/util.js';

// The status server's own http.Server, to make it fail the way an accept on EMFILE does.
const servers: Server[] = [];
vi.mock('node:http', async (importOriginal) => {
  const http = await importOriginal<typeof import('node:http')>();
  return {
    ...http,
    createServer: (...args: Parameters<typeof http.createServer>) => {
      const s = http.createServer(...args);
      servers.push(s);
      return s;
    },
  };
});

let status: StatusServer | undefined;
afterEach(async () => {
  await status?.close();
  status = undefined;
  servers.length = 0;
});

describe('status HTTP server - errors after listen', () => {
  it('an error on the listening server (accept EMFILE) is logged, not thrown; it keeps serving', async () => {
    status = await startStatusServer({ host: '127.0.0.1', port: 0, status: () => ({ ok: true }) });
    const server = servers.at(-1)!;
    const emfile = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', syscall: 'accept' });
    // Every time, not once: a listener that fires once leaves the next error unhandled.
    for (let i = 0; i < 3; i++) expect(() => server.emit('error', emfile)).not.toThrow();
    expect(await (await fetch(`${status.url}/status`)).json()).toEqual({ ok: true });
  });

  it('a malformed request costs its own connection only', async () => {
    status = await startStatusServer({ host: '127.0.0.1', port: 0, status: () => ({ ok: true }) });
    const { hostname, port } = new URL(status.url);
    const sock = connect(Number(port), hostname);
    const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
    sock.on('error', () => undefined);
    sock.end('\x00\x01 not HTTP\r\n\r\n');
    await withDeadline(closed, 5_000, 'the malformed connection closed');
    expect(await (await fetch(`${status.url}/status`)).json()).toEqual({ ok: true });
  });
});
