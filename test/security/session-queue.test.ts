/**
 * Session-layer send queues are bounded (issue 11, finding 5): a PU that
 * keeps the connection alive but never reads cannot grow the PE's memory.
 * Real sockets on 127.0.0.1; waits are on events with a deadline.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createSessionServer, type ServerSession, type SessionServer } from '../../lib/session/index.js';
import { encodeDataFrames, encodeHeartbeat } from '../../lib/session/frames.js';
import { waitFor, withDeadline } from '../transport/util.js';

let server: SessionServer | undefined;
let client: Socket | undefined;
afterEach(async () => {
  client?.destroy();
  await server?.stop();
  server = client = undefined;
});

/** A PU that connects, never reads (its receive window fills up) and hands back the PE's session. */
async function deafPeer(init: { maxQueuedBytes?: number } = {}): Promise<{ session: ServerSession; sock: Socket }> {
  server = createSessionServer({ listen: 'tcp://127.0.0.1:0', ...init });
  await server.start();
  const accepted = waitFor(server, 'session');
  const sock = netConnect({ host: '127.0.0.1', port: server.address.port });
  sock.on('error', () => {});
  sock.pause();
  client = sock;
  const [session] = await accepted;
  return { session, sock };
}

describe('security - session send queues', () => {
  it('a PE sending to a PU that never reads gets SessionLimitError at the queue bound and the connection is reset', async () => {
    const { session } = await deafPeer({ maxQueuedBytes: 1024 * 1024 });
    const closed = waitFor(session, 'close', { timeoutMs: 5_000 });
    const chunk = new Uint8Array(256 * 1024);
    let refused: unknown;
    // 16 MiB offered: far above the 1 MiB bound plus what the kernel buffers hold.
    for (let i = 0; i < 64 && refused === undefined; i++) {
      try {
        session.send(chunk);
      } catch (err) {
        refused = err;
      }
    }
    expect((refused as { code?: string } | undefined)?.code).toBe('RSP_ERR_SESSION_LIMIT');
    const [err] = await closed;
    expect(err?.code).toBe('RSP_ERR_SESSION_LIMIT');
  });

  it('a PU that floods heartbeats and never reads leaves at most one heartbeat ack queued', async () => {
    const { session, sock } = await deafPeer();
    const beats = 1_000_000;
    const one = encodeHeartbeat(7);
    const flood = Buffer.alloc(one.length * beats);
    for (let i = 0; i < beats; i++) flood.set(one, i * one.length);
    sock.write(flood);
    // Frames are handled in order: once this message arrives, every heartbeat before it was.
    const got = waitFor(session, 'message', { timeoutMs: 30_000 });
    for (const f of encodeDataFrames(new TextEncoder().encode('after the flood'), 65_528)) sock.write(f);
    await withDeadline(got, 30_000, 'the message after the flood');
    expect(session.closed).toBe(false);
    expect(session.queuedBytes).toBeLessThanOrEqual(one.length);
  });
});
