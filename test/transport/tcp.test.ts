import { connect as netConnect } from 'node:net';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createTcpTransport } from '../../lib/transport/tcp.js';
import { runTransportCompliance, type RawPeer } from './compliance.js';
import { testMessage, waitFor } from './util.js';

runTransportCompliance('tcp', { perMessagePpid: false, rawConnect: true }, () => ({
  transport: (init, components) => createTcpTransport(init, components),
  listenUrl: 'tcp://127.0.0.1:0',
  perMessagePpid: false,
  async rawConnect(url): Promise<RawPeer> {
    const socket = netConnect({ host: url.host, port: url.port });
    socket.on('error', () => {});
    await once(socket, 'connect');
    return {
      write: (b) => socket.write(b),
      closed: new Promise((resolve) => socket.once('close', () => resolve())),
      destroy: () => socket.destroy(),
    };
  },
}));

describe('tcp transport', () => {
  it('abort() right after close() closes the connection (a reset refused during a pending shutdown left the socket handle unclosed: the process spun at exit)', async () => {
    const t = createTcpTransport();
    const l = await t.listen('tcp://127.0.0.1:0');
    const accepted = waitFor(l, 'connection');
    const c = await t.connect(l.address);
    const [s] = await accepted;
    const closing = c.close();
    // The shutdown is requested on the next tick; the abort comes while it is still pending.
    await new Promise((r) => process.nextTick(r));
    await new Promise((r) => process.nextTick(r));
    c.abort();
    let timer: NodeJS.Timeout | undefined;
    const closedInTime = await Promise.race([c.closed.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 2_000)))]);
    clearTimeout(timer);
    expect(closedInTime).toBe(true);
    expect(c.status).toBe('closed');
    await closing;
    s.abort();
    await l.close();
  });

  it('refuses a message for another ppid: the stream has no ppid field', async () => {
    const t = createTcpTransport({ ppid: 11 });
    const l = await t.listen('tcp://127.0.0.1:0');
    const accepted = waitFor(l, 'connection');
    const c = await t.connect(l.address);
    const [s] = await accepted;
    expect(() => c.send(testMessage(8, 1), 12)).toThrow(expect.objectContaining({ code: 'RSP_ERR_PPID_MISMATCH' }));
    expect(c.send(testMessage(8, 1), 11)).toBe(true);
    c.abort();
    s.abort();
    await l.close();
  });

  it('reports a taken port as a typed error', async () => {
    const t = createTcpTransport();
    const l = await t.listen('tcp://127.0.0.1:0');
    await expect(t.listen(l.address)).rejects.toMatchObject({ code: 'RSP_ERR_ADDRESS_IN_USE' });
    await l.close();
  });

  it('refuses a URL of another scheme', async () => {
    await expect(createTcpTransport().connect('tls://127.0.0.1:1')).rejects.toMatchObject({ code: 'RSP_ERR_BAD_URL' });
  });
});
