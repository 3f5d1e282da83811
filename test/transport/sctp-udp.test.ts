import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { transportsFromOptions } from '../../lib/cli/options.js';
import { createTransports } from '../../lib/transport/registry.js';
import { createSctpUdpTransport } from '../../lib/transport/sctp.js';
import { parseTransportUrl } from '../../lib/transport/url.js';
import { Packet, type SctpPacket } from '../../lib/transport/sctp-package.js';
import { UdpSite } from '../../lib/transport/sctp-site.js';
import type { Logger } from '../../lib/logger.js';
import type { Connection, Listener, MessageTransport, TransportUrl } from '../../lib/transport/types.js';
import { runTransportCompliance } from './compliance.js';
import { collect, seqOf, testMessage, waitFor, withDeadline } from './util.js';

runTransportCompliance('sctp+udp', { perMessagePpid: true, rawConnect: false }, () => ({
  transport: (init, components) => createSctpUdpTransport(init, components),
  listenUrl: 'sctp+udp://127.0.0.1:0',
  perMessagePpid: true,
}));

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Chunk types of RFC 4960 3.2 a hand-made peer speaks. */
const T = { DATA: 0, INIT: 1, INIT_ACK: 2, SACK: 3, ABORT: 6, COOKIE_ECHO: 10, COOKIE_ACK: 11 } as const;

function chunk(type: number, flags: number, body: Buffer): Buffer {
  const length = 4 + body.length;
  const out = Buffer.alloc((length + 3) & ~3);
  out[0] = type;
  out[1] = flags;
  out.writeUInt16BE(length, 2);
  body.copy(out, 4);
  return out;
}

/**
 * An SCTP peer written from RFC 4960 alone, over its own UDP socket: it checks
 * the transport against the wire format rather than against the package it is
 * built on, and can send what no well-behaved stack would.
 */
class HandMadePeer {
  readonly socket: UdpSocket;
  readonly myTag = randomBytes(4).readUInt32BE(0) || 1;
  peerTag = 0;
  #tsn = 1;
  #ssn = 0;
  readonly #chunks: Buffer[] = [];
  /** Every packet received, as its chunks, for the tests that look at what travels together. */
  readonly #packets: Buffer[][] = [];
  readonly #waiters = new Set<() => void>();

  private constructor(
    socket: UdpSocket,
    readonly sctpPort: number,
    readonly serverPort: number,
  ) {
    this.socket = socket;
    socket.on('message', (msg: Buffer) => {
      const p = Packet.fromBuffer(msg);
      if (!p || p.checksum_error) return;
      this.#chunks.push(...(p.chunks ?? []));
      this.#packets.push(p.chunks ?? []);
      for (const w of [...this.#waiters]) w();
    });
  }

  /** `sctpPort` is the SCTP source port in the common header, independent of the UDP port. */
  static async open(serverPort: number, sctpPort: number): Promise<HandMadePeer> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return new HandMadePeer(socket, sctpPort, serverPort);
  }

  sendRaw(bytes: Buffer): void {
    this.socket.send(bytes, this.serverPort, '127.0.0.1');
  }

  send(chunks: Buffer[], vtag = this.peerTag): void {
    this.sendRaw(new Packet({ src_port: this.sctpPort, dst_port: this.serverPort, v_tag: vtag }, chunks).toBuffer());
  }

  /** The next chunk of `type` received (consumed), or a DeadlineError. */
  next(type: number, timeoutMs = 5_000): Promise<Buffer> {
    return withDeadline(
      new Promise<Buffer>((resolve) => {
        const check = (): void => {
          const i = this.#chunks.findIndex((c) => c[0] === type);
          if (i < 0) return;
          this.#waiters.delete(check);
          resolve(this.#chunks.splice(i, 1)[0]!);
        };
        this.#waiters.add(check);
        check();
      }),
      timeoutMs,
      `chunk type ${type}`,
    );
  }

  /** The next packet received that passes `test` (consumed, with the packets before it), or a DeadlineError. */
  nextPacket(test: (chunks: Buffer[]) => boolean, what: string, timeoutMs = 5_000): Promise<Buffer[]> {
    return withDeadline(
      new Promise<Buffer[]>((resolve) => {
        const check = (): void => {
          const i = this.#packets.findIndex(test);
          if (i < 0) return;
          this.#waiters.delete(check);
          resolve(this.#packets.splice(0, i + 1)[i]!);
        };
        this.#waiters.add(check);
        check();
      }),
      timeoutMs,
      what,
    );
  }

  /** Acknowledges everything up to `tsn`: a SACK without gap reports (RFC 4960 3.3.4). */
  sack(tsn: number): void {
    const body = Buffer.alloc(12);
    body.writeUInt32BE(tsn, 0);
    body.writeUInt32BE(128 * 1024, 4);
    this.send([chunk(T.SACK, 0, body)]);
  }

  /** INIT, INIT ACK, COOKIE ECHO, COOKIE ACK (RFC 4960 5.1). */
  async associate(): Promise<void> {
    const init = Buffer.alloc(16);
    init.writeUInt32BE(this.myTag, 0);
    init.writeUInt32BE(128 * 1024, 4);
    init.writeUInt16BE(3, 8);
    init.writeUInt16BE(3, 10);
    init.writeUInt32BE(this.#tsn, 12);
    this.send([chunk(T.INIT, 0, init)], 0);
    const ack = await this.next(T.INIT_ACK);
    this.peerTag = ack.readUInt32BE(4);
    let cookie: Buffer | undefined;
    for (let off = 20; off + 4 <= ack.readUInt16BE(2);) {
      const type = ack.readUInt16BE(off);
      const len = ack.readUInt16BE(off + 2);
      if (type === 7) cookie = ack.subarray(off + 4, off + len);
      off += (len + 3) & ~3;
    }
    if (!cookie) throw new Error('INIT ACK without a state cookie');
    this.send([chunk(T.COOKIE_ECHO, 0, Buffer.from(cookie))]);
    await this.next(T.COOKIE_ACK);
  }

  /** Sends one whole message; returns its TSN. */
  sendData(ppid: number, data: Uint8Array, stream = 0): number {
    const tsn = this.#tsn++;
    const head = Buffer.alloc(12);
    head.writeUInt32BE(tsn, 0);
    head.writeUInt16BE(stream, 4);
    head.writeUInt16BE(this.#ssn++, 6);
    head.writeUInt32BE(ppid, 8);
    this.send([chunk(T.DATA, 0x03, Buffer.concat([head, data]))]);
    return tsn;
  }

  /** The user data and PPID of the next whole (B and E) DATA chunk. */
  async nextData(): Promise<{ ppid: number; data: Buffer }> {
    const c = await this.next(T.DATA);
    return { ppid: c.readUInt32BE(12), data: c.subarray(16, c.readUInt16BE(2)) };
  }

  close(): void {
    if (this.peerTag) this.send([chunk(T.ABORT, 0, Buffer.alloc(0))]);
    this.socket.close();
  }
}

/** A listener in a process of its own that echoes every message; it prints its port. */
function echoServer(url: string): { child: ChildProcess; port: Promise<number> } {
  const code = `
    const { createSctpUdpTransport } = await import('./lib/transport/sctp.js');
    const l = await createSctpUdpTransport().listen(${JSON.stringify(url)});
    l.on('connection', (c) => c.on('message', (m, p) => c.send(m, p)));
    console.log('listening ' + l.address.port);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const port = withDeadline(
    new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`echo server exited (${code}): ${err}`)));
    }),
    20_000,
    'echo server listening',
  );
  return { child, port };
}

describe('sctp+udp transport', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function serve(
    url = 'sctp+udp://127.0.0.1:0',
    t: MessageTransport = createSctpUdpTransport(),
  ): Promise<{ listener: Listener; accepted: Connection[] }> {
    const listener = await t.listen(url);
    const accepted: Connection[] = [];
    listener.on('connection', (c) => {
      accepted.push(c);
      c.on('message', (m, p) => c.send(m, p));
    });
    cleanups.push(async () => {
      for (const c of accepted) c.abort();
      await listener.close();
    });
    return { listener, accepted };
  }

  async function connect(url: TransportUrl | string, t: MessageTransport = createSctpUdpTransport()): Promise<Connection> {
    const c = await t.connect(url);
    cleanups.push(() => c.abort());
    return c;
  }

  it('writes on three streams at once, messages from 16 KiB to the maximum, both ways, none lost or reordered within its PPID', async () => {
    const { listener } = await serve();
    const client = await connect(listener.address);
    const ppids = [11, 12, 4711];
    const sizes = [16_384, 16_388, 40_000, 65_536, 8, 65_532, 20_000];
    const total = ppids.length * sizes.length * 2;
    const echoed = collect(client, 'message', total, 20_000);
    for (let round = 0; round < 2; round++) {
      sizes.forEach((size, i) => {
        for (const ppid of ppids) client.send(testMessage(size, ppid * 1000 + round * 100 + i), ppid);
      });
    }
    const got = await echoed;
    for (const ppid of ppids) {
      const mine = got.filter(([, p]) => p === ppid).map(([m]) => m);
      const want = [0, 1].flatMap((round) => sizes.map((size, i) => testMessage(size, ppid * 1000 + round * 100 + i)));
      expect(mine.map((m) => seqOf(m))).toEqual(want.map((m) => seqOf(m)));
      mine.forEach((m, i) => expect(Buffer.from(m).equals(Buffer.from(want[i]!))).toBe(true));
    }
  });

  it('serves every peer on the listening socket, telling apart peers that use the same SCTP port', async () => {
    const { listener, accepted } = await serve();
    const peers = await Promise.all([HandMadePeer.open(listener.address.port, 5000), HandMadePeer.open(listener.address.port, 5000)]);
    cleanups.push(() => peers.forEach((p) => p.close()));
    for (const p of peers) await p.associate();
    peers.forEach((p, i) => p.sendData(11, testMessage(32, 70 + i)));
    const replies = await Promise.all(peers.map((p) => p.nextData()));
    expect(replies.map((r) => [r.ppid, seqOf(r.data)])).toEqual([
      [11, 70],
      [11, 71],
    ]);
    expect(accepted).toHaveLength(2);
    expect(accepted.map((c) => c.remote.port).sort()).toEqual(peers.map((p) => p.socket.address().port).sort());
    for (const c of accepted) expect(c.local).toEqual({ host: '127.0.0.1', port: listener.address.port });
  });

  it('a reply carries the SACK for the request it answers; an unanswered message gets a SACK of its own; an unacknowledged reply is sent again', async () => {
    const listener = await createSctpUdpTransport().listen('sctp+udp://127.0.0.1:0');
    const accepted: Connection[] = [];
    listener.on('connection', (c) => {
      accepted.push(c);
      // PPID 99 goes unanswered.
      c.on('message', (m, p) => p !== 99 && c.send(m, p));
    });
    const peer = await HandMadePeer.open(listener.address.port, 7000);
    cleanups.push(async () => {
      peer.close();
      for (const c of accepted) c.abort();
      await listener.close();
    });
    await peer.associate();
    const hasData = (chunks: Buffer[]): boolean => chunks.some((c) => c[0] === T.DATA);
    for (let i = 0; i < 5; i++) {
      const tsn = peer.sendData(4711, testMessage(64, i));
      const reply = await peer.nextPacket(hasData, `reply ${i}`);
      // RFC 4960 6.2: the SACK rides with the DATA sent back, and it acknowledges this request, not the one before.
      expect(reply.map((c) => c[0])).toEqual([T.SACK, T.DATA]);
      expect(reply[0]!.readUInt32BE(4)).toBe(tsn);
      expect(seqOf(reply[1]!.subarray(16))).toBe(i);
      peer.sack(reply[1]!.readUInt32BE(4));
    }
    // Nothing to bundle with: the delayed SACK (RFC 4960 6.2: within 200 ms) acknowledges it on its own.
    const quiet = peer.sendData(99, testMessage(16, 50));
    const alone = await peer.nextPacket((chunks) => chunks.some((c) => c[0] === T.SACK && c.readUInt32BE(4) === quiet), 'delayed SACK');
    expect(alone.map((c) => c[0])).toEqual([T.SACK]);
    // A reply the peer does not acknowledge goes again, with its TSN, when T3-rtx expires (RFC 4960 6.3.3).
    peer.sendData(4711, testMessage(64, 60));
    const first = (await peer.nextPacket(hasData, 'reply 60')).find((c) => c[0] === T.DATA)!;
    const again = (await peer.nextPacket(hasData, 'retransmitted reply 60', 15_000)).find((c) => c[0] === T.DATA)!;
    expect(again.readUInt32BE(4)).toBe(first.readUInt32BE(4));
    expect(seqOf(again.subarray(16))).toBe(60);
    peer.sack(again.readUInt32BE(4));
    peer.sendData(4711, testMessage(64, 61));
    const next = (await peer.nextPacket(hasData, 'reply 61')).find((c) => c[0] === T.DATA)!;
    expect([next.readUInt32BE(4), seqOf(next.subarray(16))]).toEqual([first.readUInt32BE(4) + 1, 61]);
  });

  it('recovers from lost packets both ways: request/response and a burst of messages arrive whole and in order', async () => {
    const { listener } = await serve();
    const client = await connect(listener.address);
    // Drops chosen DATA-carrying packets on their way out, counted per side.
    const sent = { client: 0, server: 0 };
    const drop = { client: new Set<number>(), server: new Set<number>() };
    const dropped: string[] = [];
    const original = UdpSite.prototype.sendPacket;
    const spy = vi.spyOn(UdpSite.prototype, 'sendPacket').mockImplementation(function (
      this: UdpSite,
      dst: string,
      packet: SctpPacket,
      callback?: (err?: Error | null) => void,
    ) {
      if (packet.chunks?.some((c) => c[0] === T.DATA)) {
        const side = this.port === listener.address.port ? 'server' : 'client';
        const n = ++sent[side];
        if (drop[side].has(n)) {
          dropped.push(`${side} ${n}`);
          callback?.();
          return;
        }
      }
      original.call(this, dst, packet, callback);
    });
    cleanups.push(() => spy.mockRestore());

    // Request/response: the 4th request and the 7th reply are lost.
    drop.client.add(4);
    drop.server.add(7);
    for (let i = 0; i < 12; i++) {
      const echoed = waitFor(client, 'message', { timeoutMs: 20_000 });
      client.send(testMessage(100, i));
      expect(seqOf((await echoed)[0])).toBe(i);
    }
    expect(dropped).toEqual(['client 4', 'server 7']);

    // A burst in flight at once: a lost packet leaves a gap the SACKs report, and is sent again.
    drop.client.add(sent.client + 2);
    drop.server.add(sent.server + 3);
    const sizes = [1_000, 30_000, 4_000, 65_536, 8, 12_000];
    const burst = Array.from({ length: 60 }, (_, i) => testMessage(sizes[i % sizes.length]!, 100 + i));
    const echoes = collect(client, 'message', burst.length, 30_000);
    for (const m of burst) client.send(m);
    const got = (await echoes).map(([m]) => m);
    expect(got.map((m) => seqOf(m))).toEqual(burst.map((m) => seqOf(m)));
    got.forEach((m, i) => expect(Buffer.from(m).equals(Buffer.from(burst[i]!))).toBe(true));
    expect(dropped).toHaveLength(4);
  });

  it('drops malformed and hostile packets, logs them, keeps its associations and goes on accepting', async () => {
    const warnings: Record<string, unknown>[] = [];
    const recorder: Logger = {
      debug: () => {},
      info: () => {},
      warn: (obj, msg) => warnings.push({ ...obj, msg }),
      error: () => {},
      child: () => recorder,
    };
    const { listener, accepted } = await serve(undefined, createSctpUdpTransport({}, { logger: recorder }));
    const port = listener.address.port;
    const good = await connect(listener.address);
    const peer = await HandMadePeer.open(port, 6000);
    cleanups.push(() => peer.close());
    await peer.associate();

    const junk = await HandMadePeer.open(port, 6001);
    cleanups.push(() => junk.close());
    junk.sendRaw(Buffer.from([1, 2, 3]));
    junk.sendRaw(randomBytes(64)); // bad checksum
    junk.send([Buffer.from([T.DATA, 0x03, 0xff, 0xff])], 0); // chunk length past the packet
    junk.send([chunk(T.INIT, 0, Buffer.alloc(16))], 0); // initiate tag 0
    junk.send([chunk(T.INIT, 0, Buffer.alloc(16, 1)), chunk(T.DATA, 3, Buffer.alloc(20))], 0); // INIT bundled
    junk.send([chunk(T.COOKIE_ECHO, 0, randomBytes(80))], 1234); // forged cookie
    junk.send([chunk(0x3f, 0, Buffer.alloc(8)), chunk(0xff, 0, Buffer.alloc(8))], 99); // unknown chunk types
    junk.send([chunk(T.DATA, 0x03, Buffer.alloc(20))], 77); // out of the blue
    peer.send([chunk(T.COOKIE_ECHO, 0, randomBytes(80))]); // forged cookie on a live association
    peer.send([chunk(T.SACK, 0, Buffer.alloc(12, 0xff))]); // acknowledges what was never sent

    peer.sendData(12, testMessage(16, 5));
    const reply = await peer.nextData();
    expect([reply.ppid, seqOf(reply.data)]).toEqual([12, 5]);
    const echoed = waitFor(good, 'message');
    good.send(testMessage(64, 6));
    expect(seqOf((await echoed)[0])).toBe(6);
    const late = await connect(listener.address);
    const again = waitFor(late, 'message');
    late.send(testMessage(8, 7));
    expect(seqOf((await again)[0])).toBe(7);
    expect(accepted.every((c) => c.status === 'open')).toBe(true);
    expect(accepted).toHaveLength(3);
    // Logged, but at most one line per 10 s however many arrive.
    expect(warnings).toEqual([expect.objectContaining({ msg: 'dropped SCTP packets', reason: 'shorter than an SCTP common header', dropped: 1 })]);
  });

  it('a peer process killed with -9 and started again on its port: the next send ends in a reset, not silence', async () => {
    const first = echoServer('sctp+udp://127.0.0.1:0');
    cleanups.push(() => first.child.kill('SIGKILL'));
    const port = await first.port;
    const client = await connect(`sctp+udp://127.0.0.1:${port}`);
    const echoed = waitFor(client, 'message');
    client.send(testMessage(32, 1));
    expect(seqOf((await echoed)[0])).toBe(1);

    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    const second = echoServer(`sctp+udp://127.0.0.1:${port}`);
    cleanups.push(() => second.child.kill('SIGKILL'));
    expect(await second.port).toBe(port);

    // The new process has never heard of the association: it answers out of the blue with an ABORT.
    const closed = waitFor(client, 'close', { timeoutMs: 10_000 });
    client.send(testMessage(32, 2));
    expect((await closed)[0]?.code).toBe('RSP_ERR_CONNECTION_RESET');
    const fresh = await connect(`sctp+udp://127.0.0.1:${port}`);
    const again = waitFor(fresh, 'message');
    fresh.send(testMessage(32, 3));
    expect(seqOf((await again)[0])).toBe(3);
  });

  it('a peer process killed with -9 for good: the next send learns of it from ICMP; processes on one host never share a port', async () => {
    const servers = [echoServer('sctp+udp://127.0.0.1:0'), echoServer('sctp+udp://127.0.0.1:0')];
    for (const s of servers) cleanups.push(() => s.child.kill('SIGKILL'));
    const ports = await Promise.all(servers.map((s) => s.port));
    expect(new Set(ports).size).toBe(2);
    const t = createSctpUdpTransport();
    const clients = await Promise.all(ports.map((p) => connect(`sctp+udp://127.0.0.1:${p}`, t)));
    for (const [i, c] of clients.entries()) {
      const echoed = waitFor(c, 'message');
      c.send(testMessage(16, i));
      expect(seqOf((await echoed)[0])).toBe(i);
    }
    servers[0]!.child.kill('SIGKILL');
    await new Promise((resolve) => servers[0]!.child.once('exit', resolve));
    const closed = waitFor(clients[0]!, 'close', { timeoutMs: 10_000 });
    clients[0]!.send(testMessage(16, 10));
    expect((await closed)[0]?.code).toBe('RSP_ERR_CONNECTION_RESET');
    // The other process's association is untouched.
    const echoed = waitFor(clients[1]!, 'message');
    clients[1]!.send(testMessage(16, 11));
    expect(seqOf((await echoed)[0])).toBe(11);
    await expect(t.connect(`sctp+udp://127.0.0.1:${ports[0]}`)).rejects.toMatchObject({ code: 'RSP_ERR_CONNECTION_REFUSED' });
  });

  it('runs over IPv6 too', async () => {
    const { listener } = await serve('sctp+udp://[::1]:0');
    expect(listener.address.href).toMatch(/^sctp\+udp:\/\/\[::1\]:\d+$/);
    const c = await connect(listener.address);
    expect(c.local.host).toBe('::1');
    const got = waitFor(c, 'message');
    c.send(testMessage(40_000, 8), 12);
    const [m, ppid] = await got;
    expect([m.length, seqOf(m), ppid]).toEqual([40_000, 8, 12]);
  });

  it('is offered by createTransports and the CLI options when a URL asks for it, and parses its URLs', async () => {
    expect(parseTransportUrl('SCTP+UDP://127.0.0.1:9899')).toEqual({ scheme: 'sctp+udp', host: '127.0.0.1', port: 9899, href: 'sctp+udp://127.0.0.1:9899' });
    expect(parseTransportUrl('sctp://[::1]:3863').href).toBe('sctp://[::1]:3863');
    expect(() => parseTransportUrl('sctp+udp://127.0.0.1')).toThrow(expect.objectContaining({ code: 'RSP_ERR_BAD_URL' }));
    expect(createTransports({ 'sctp+udp': {}, sctp: {} }).schemes).toEqual(['tcp', 'sctp', 'sctp+udp']);
    expect(() => createTransports().transportFor('sctp+udp://127.0.0.1:1')).toThrow(expect.objectContaining({ code: 'RSP_ERR_UNSUPPORTED_SCHEME' }));
    const cli = transportsFromOptions({}, ['sctp+udp://127.0.0.1:3863', 'tcp://127.0.0.1:1'], 'server');
    expect(cli.schemes).toEqual(['tcp', 'sctp+udp']);
    const { listener } = await serve();
    const c = await cli.connect(listener.address);
    cleanups.push(() => c.abort());
    expect(c.scheme).toBe('sctp+udp');
  });

  it('times out a connect to a UDP port that never answers, and cleans up', async () => {
    const silent = createSocket('udp4');
    let inits = 0;
    silent.on('message', () => inits++);
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
    cleanups.push(() => silent.close());
    const t = createSctpUdpTransport();
    await expect(t.connect(`sctp+udp://127.0.0.1:${silent.address().port}`, { timeoutMs: 300 })).rejects.toMatchObject({ code: 'RSP_ERR_TIMEOUT' });
    expect(inits).toBeGreaterThan(0);
  });

  it('reports a taken port and a URL of another scheme as typed errors', async () => {
    const { listener } = await serve();
    await expect(createSctpUdpTransport().listen(listener.address)).rejects.toMatchObject({ code: 'RSP_ERR_ADDRESS_IN_USE' });
    const udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    cleanups.push(() => udp.close());
    await expect(createSctpUdpTransport().listen(`sctp+udp://127.0.0.1:${udp.address().port}`)).rejects.toMatchObject({
      code: 'RSP_ERR_ADDRESS_IN_USE',
    });
    await expect(createSctpUdpTransport().connect('tcp://127.0.0.1:1')).rejects.toMatchObject({ code: 'RSP_ERR_BAD_URL' });
  });
});
