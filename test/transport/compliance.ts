/**
 * The behaviour every MessageTransport must show, as vitest tests:
 * `runTransportCompliance('tcp', () => harness)` in each transport's test file.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import { RSerPoolError } from '../../lib/errors.js';
import type { Connection, Listener, MessageTransport, TransportComponents, TransportInit, TransportUrl } from '../../lib/transport/types.js';
import { collect, seqOf, testMessage, waitFor, withDeadline } from './util.js';

/** A byte-level peer (no framing) for stream transports, to send garbage. */
export interface RawPeer {
  write(bytes: Uint8Array): void;
  /** Resolves when the transport closes the raw peer's connection. */
  readonly closed: Promise<void>;
  destroy(): void;
}

export interface TransportHarness {
  /** A fresh transport (a separate host for memory://). */
  transport(init?: TransportInit, components?: TransportComponents): MessageTransport;
  /** Where a test listener binds, e.g. 'tcp://127.0.0.1:0'. */
  listenUrl: string;
  /** True when each message carries its own ppid (memory); false when the connection fixes it (tcp, tls). */
  perMessagePpid: boolean;
  /**
   * False where the peer cannot tell an abort from a close (tls: Node cannot
   * send a TCP RST under a TLS socket, so the peer sees an end without close_notify).
   */
  resetVisible?: boolean;
  /** Stream transports: a raw connection to the listener, past any TLS handshake. */
  rawConnect?(url: TransportUrl): Promise<RawPeer>;
  teardown?(): Promise<void>;
}

const MAX_FRAME = 65_536; // the largest a 16-bit length field frames, padded

function codeOf(err: unknown): string | undefined {
  return err instanceof RSerPoolError ? err.code : undefined;
}

/** Calls fn and returns the code of the RSerPoolError it throws. */
function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return codeOf(err) ?? `not an RSerPoolError: ${String(err)}`;
  }
  return undefined;
}

async function rejectedCode(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return codeOf(err) ?? `not an RSerPoolError: ${String(err)}`;
  }
  return undefined;
}

/** What a transport can do, known when the tests are defined, so inapplicable tests are not defined at all. */
export interface TransportCapabilities {
  /** Each message carries its own ppid (memory, sctp) rather than one per connection. */
  perMessagePpid: boolean;
  /** The harness can open a raw byte stream to the listener (tcp, tls). */
  rawConnect: boolean;
}

export function runTransportCompliance(name: string, caps: TransportCapabilities, factory: () => TransportHarness | Promise<TransportHarness>): void {
  describe(`${name} transport - compliance`, () => {
    let h: TransportHarness;
    const cleanups: (() => Promise<unknown> | void)[] = [];

    beforeEach(async () => {
      h = await factory();
    });

    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
      await h.teardown?.();
    });

    async function listen(t: MessageTransport, url: TransportUrl | string = h.listenUrl, ppid?: number): Promise<Listener> {
      const l = await t.listen(url, ppid === undefined ? {} : { ppid });
      cleanups.push(() => l.close());
      return l;
    }

    function track(c: Connection): Connection {
      cleanups.push(() => c.abort());
      return c;
    }

    /** A client connection and the server side it produced. */
    async function pair(
      opts: { server?: MessageTransport; client?: MessageTransport; ppid?: number } = {},
    ): Promise<{ client: Connection; server: Connection; listener: Listener }> {
      const st = opts.server ?? h.transport();
      const ct = opts.client ?? h.transport();
      const listener = await listen(st, h.listenUrl, opts.ppid);
      const accepted = waitFor(listener, 'connection');
      const client = track(await ct.connect(listener.address, opts.ppid === undefined ? {} : { ppid: opts.ppid }));
      const [server] = await accepted;
      track(server);
      return { client, server, listener };
    }

    it('connects, accepts, and reports both endpoints', async () => {
      const { client, server, listener } = await pair();
      expect(client.status).toBe('open');
      expect(server.status).toBe('open');
      expect(client.scheme).toBe(listener.address.scheme);
      expect(client.remote.port).toBe(listener.address.port);
      expect(client.remote.host).toBe(listener.address.host);
      expect(server.remote).toEqual(client.local);
      expect(server.local).toEqual(client.remote);
      expect(client.id).not.toBe('');
    });

    it('delivers messages both ways, whole, in order, with their ppid', async () => {
      const ppid = 12;
      const { client, server } = await pair({ ppid });
      const sizes = [8, 12, 100, 1_000, 4_096, 20_000, 8];
      const toServer = collect(server, 'message', sizes.length);
      const toClient = collect(client, 'message', sizes.length);
      sizes.forEach((size, i) => client.send(testMessage(size, i), ppid));
      sizes.forEach((size, i) => server.send(testMessage(size, 100 + i)));
      for (const [got, base] of [
        [await toServer, 0],
        [await toClient, 100],
      ] as const) {
        expect(got.map(([m]) => m.length)).toEqual(sizes);
        got.forEach(([m, p], i) => {
          expect(p).toBe(ppid);
          expect(Array.from(m)).toEqual(Array.from(testMessage(sizes[i]!, base + i)));
        });
      }
      expect(client.ppid).toBe(ppid);
      expect(server.ppid).toBe(ppid);
    });

    if (caps.perMessagePpid)
      it('keeps each message its own ppid where the transport carries one per message', async () => {
        const { client, server } = await pair();
        const got = collect(server, 'message', 3);
        client.send(testMessage(8, 0), 11);
        client.send(testMessage(8, 1), 12);
        client.send(testMessage(8, 2), 4711);
        expect((await got).map(([m, p]) => [seqOf(m), p])).toEqual([
          [0, 11],
          [1, 12],
          [2, 4711],
        ]);
      });

    it('carries 1,000 small messages and a few at the maximum size, in order', async () => {
      const { client, server } = await pair();
      const big = [MAX_FRAME, MAX_FRAME - 4, 60_000];
      const total = 1_000 + big.length;
      const got = collect(server, 'message', total, 20_000);
      let seq = 0;
      const sendAll = async (): Promise<void> => {
        const queue = [...Array.from({ length: 500 }, () => 32), ...big, ...Array.from({ length: 500 }, () => 32)];
        for (const size of queue) {
          if (!client.send(testMessage(size, seq++))) await waitFor(client, 'drain');
        }
      };
      await sendAll();
      const msgs = await got;
      expect(msgs.map(([m]) => seqOf(m))).toEqual(Array.from({ length: total }, (_, i) => i));
      expect(msgs.slice(500, 503).map(([m]) => m.length)).toEqual(big);
      expect(Array.from(msgs[500]![0].subarray(0, 64))).toEqual(Array.from(testMessage(MAX_FRAME, 500).subarray(0, 64)));
    });

    it('refuses to send a message over the maximum or one its header does not frame, and stays open', async () => {
      const { client, server } = await pair();
      expect(thrownCode(() => client.send(new Uint8Array(MAX_FRAME + 4)))).toBe('RSP_ERR_MESSAGE_TOO_LARGE');
      const bad = testMessage(16, 1);
      bad[3] = 40; // says 40 bytes, holds 16
      expect(thrownCode(() => client.send(bad))).toBe('RSP_ERR_INVALID_MESSAGE');
      const got = waitFor(server, 'message');
      client.send(testMessage(16, 7));
      expect(seqOf((await got)[0])).toBe(7);
      expect(client.status).toBe('open');
    });

    it('closes a connection that receives a message over its maximum with a framing error; the listener carries on', async () => {
      const st = h.transport({ maxMessageSize: 1_024 });
      const { client, server, listener } = await pair({ server: st });
      const serverClosed = waitFor(server, 'close');
      const clientClosed = waitFor(client, 'close');
      client.send(testMessage(2_048, 1));
      const [err] = await serverClosed;
      expect(err?.code).toBe('RSP_ERR_FRAMING');
      await clientClosed;
      expect(client.status).toBe('closed');

      const accepted = waitFor(listener, 'connection');
      const again = track(await h.transport().connect(listener.address));
      const [s2] = await accepted;
      track(s2);
      const got = waitFor(s2, 'message');
      again.send(testMessage(1_024, 2));
      expect(seqOf((await got)[0])).toBe(2);
    });

    it('serves 50 concurrent connections, each getting its own replies', async () => {
      const st = h.transport();
      const listener = await listen(st);
      listener.on('connection', (c) => {
        track(c);
        c.on('message', (m) => c.send(m));
      });
      const ct = h.transport();
      const conns = await Promise.all(Array.from({ length: 50 }, () => ct.connect(listener.address).then(track)));
      const replies = conns.map((c) => collect(c, 'message', 3));
      conns.forEach((c, i) => {
        for (let k = 0; k < 3; k++) c.send(testMessage(64, i * 10 + k));
      });
      const got = await Promise.all(replies);
      got.forEach((msgs, i) => expect(msgs.map(([m]) => seqOf(m))).toEqual([i * 10, i * 10 + 1, i * 10 + 2]));
      expect(new Set(conns.map((c) => `${c.local.host}:${c.local.port}`)).size).toBe(50);
    });

    it('fails fast with a typed error when nothing listens', async () => {
      const l = await h.transport().listen(h.listenUrl);
      const address = l.address;
      await l.close();
      const start = performance.now();
      expect(await withDeadline(rejectedCode(h.transport().connect(address)), 2_000)).toBe('RSP_ERR_CONNECTION_REFUSED');
      expect(performance.now() - start).toBeLessThan(2_000);
    });

    it('honours an aborted signal and a deadline on connect and listen', async () => {
      const listener = await listen(h.transport());
      listener.on('connection', (c) => track(c));
      const t = h.transport();
      expect(await rejectedCode(t.connect(listener.address, { signal: AbortSignal.abort() }))).toBe('RSP_ERR_ABORTED');
      expect(await rejectedCode(t.listen(h.listenUrl, { signal: AbortSignal.abort() }))).toBe('RSP_ERR_ABORTED');

      const ac = new AbortController();
      const pending = t.connect(listener.address, { signal: ac.signal });
      ac.abort();
      expect(await rejectedCode(pending)).toBe('RSP_ERR_ABORTED');

      const clock = new ManualClock();
      const slow = h.transport({}, { clock });
      const timed = slow.connect(listener.address, { timeoutMs: 1_000 });
      clock.advance(1_000); // before any I/O callback can complete the connect
      expect(await rejectedCode(timed)).toBe('RSP_ERR_TIMEOUT');
    });

    it('surfaces a graceful close on both sides and refuses sends afterwards', async () => {
      const { client, server } = await pair();
      const serverClosed = waitFor(server, 'close');
      // Queued data goes out before the close.
      const got = waitFor(server, 'message');
      client.send(testMessage(32, 9));
      await withDeadline(client.close(), 5_000, 'close');
      expect(seqOf((await got)[0])).toBe(9);
      expect((await serverClosed)[0]).toBeUndefined();
      expect(await client.closed).toBeUndefined();
      expect(client.status).toBe('closed');
      expect(server.status).toBe('closed');
      expect(thrownCode(() => client.send(testMessage(8, 0)))).toBe('RSP_ERR_CONNECTION_CLOSED');
      expect(thrownCode(() => server.send(testMessage(8, 0)))).toBe('RSP_ERR_CONNECTION_CLOSED');
    });

    it('surfaces an abrupt reset as a close with a reset error', async () => {
      const { client, server } = await pair();
      const serverClosed = waitFor(server, 'close');
      client.abort();
      const [err] = await serverClosed;
      if (h.resetVisible ?? true) expect(err?.code).toBe('RSP_ERR_CONNECTION_RESET');
      expect(server.status).toBe('closed');
      expect((await client.closed)?.code).toBe('RSP_ERR_ABORTED');
    });

    it('stops accepting once the listener is closed, and the address can be bound again', async () => {
      const st = h.transport();
      const first = await st.listen(h.listenUrl);
      const address = first.address;
      const { client: kept, server: keptServer } = await (async () => {
        const accepted = waitFor(first, 'connection');
        const c = track(await h.transport().connect(address));
        return { client: c, server: track((await accepted)[0]) };
      })();
      await first.close();
      expect(await rejectedCode(h.transport().connect(address))).toBe('RSP_ERR_CONNECTION_REFUSED');
      // Connections accepted before the close live on.
      const got = waitFor(keptServer, 'message');
      kept.send(testMessage(8, 3));
      expect(seqOf((await got)[0])).toBe(3);

      const second = await listen(st, address);
      expect(second.address.href).toBe(address.href);
      const accepted = waitFor(second, 'connection');
      track(await h.transport().connect(address));
      track((await accepted)[0]);
    });

    it('reports backpressure: send returns false, then drain; over the hard limit it throws', async () => {
      const ct = h.transport({ maxBufferedBytes: 512 * 1024 });
      const { client, server } = await pair({ client: ct });
      let sawFalse = false;
      let code: string | undefined;
      let sent = 0;
      // A synchronous loop: the receiver cannot read until it yields.
      for (let i = 0; i < 20_000 && code === undefined; i++) {
        code = thrownCode(() => {
          if (!client.send(testMessage(MAX_FRAME, i))) sawFalse = true;
          sent++;
        });
      }
      expect(sawFalse).toBe(true);
      expect(code).toBe('RSP_ERR_BUFFER_FULL');
      expect(client.bufferedAmount).toBeLessThanOrEqual(512 * 1024);
      const all = collect(server, 'message', sent, 20_000);
      await waitFor(client, 'drain', { timeoutMs: 10_000 });
      expect((await all).length).toBe(sent);
    });

    if (caps.rawConnect)
      it('closes only the connection whose peer sends garbage', async () => {
        const rawConnect = h.rawConnect!;
        const { client: good, server: goodServer, listener } = await pair();
        const accepted = waitFor(listener, 'connection');
        const raw = await rawConnect(listener.address);
        cleanups.push(() => raw.destroy());
        const [victim] = await accepted;
        const victimClosed = waitFor(victim, 'close');
        raw.write(Uint8Array.from([0x01, 0x00, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef])); // length 1 < header
        expect((await victimClosed)[0]?.code).toBe('RSP_ERR_FRAMING');
        await withDeadline(raw.closed, 5_000, 'raw peer disconnected');

        const got = waitFor(goodServer, 'message');
        good.send(testMessage(8, 5));
        expect(seqOf((await got)[0])).toBe(5);
        expect(goodServer.status).toBe('open');
      });

    if (caps.rawConnect)
      it('delivers the whole messages that precede garbage in the same chunk, then closes with a framing error', async () => {
        const listener = await listen(h.transport());
        const accepted = waitFor(listener, 'connection');
        const raw = await h.rawConnect!(listener.address);
        cleanups.push(() => raw.destroy());
        const [victim] = await accepted;
        const got: number[] = [];
        victim.on('message', (m) => got.push(seqOf(m)));
        const closed = waitFor(victim, 'close');
        const good = testMessage(16, 77);
        const chunk = new Uint8Array(good.length + 4);
        chunk.set(good);
        chunk.set([0x01, 0x00, 0x00, 0x02], good.length); // length 2 < header
        raw.write(chunk);
        expect((await closed)[0]?.code).toBe('RSP_ERR_FRAMING');
        expect(got).toEqual([77]);
      });

    if (caps.rawConnect)
      it('closes a connection whose peer announces an oversize message, before buffering it', async () => {
        const st = h.transport({ maxMessageSize: 256 });
        const listener = await listen(st);
        const accepted = waitFor(listener, 'connection');
        const raw = await h.rawConnect!(listener.address);
        cleanups.push(() => raw.destroy());
        const [victim] = await accepted;
        const closed = waitFor(victim, 'close');
        raw.write(Uint8Array.from([0x01, 0x00, 0x04, 0x00])); // announces 1,024 bytes, sends 4
        const [err] = await closed;
        expect(err?.code).toBe('RSP_ERR_FRAMING');
        expect((err?.cause as { code?: string } | undefined)?.code).toBe('TOO_LARGE');
      });
  });
}
