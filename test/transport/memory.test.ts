import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import { createMemoryNetwork, type MemoryNetwork } from '../../lib/transport/memory.js';
import type { Connection, Listener, MessageTransport } from '../../lib/transport/types.js';
import { runTransportCompliance } from './compliance.js';
import { collect, seqOf, testMessage, waitFor } from './util.js';

runTransportCompliance('memory', { perMessagePpid: true, rawConnect: false }, () => {
  const net = createMemoryNetwork();
  let n = 0;
  return {
    transport: (init, components) => net.transport(`host-${++n}`, init, components),
    listenUrl: 'memory://server:3863',
    perMessagePpid: true,
  };
});

/** Lets setImmediate callbacks and promise jobs run (latency 0 delivers on the next turn). */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('memory transport', () => {
  async function setup(
    net: MemoryNetwork,
    advance: () => Promise<void> = turn,
  ): Promise<{ a: MessageTransport; listener: Listener; client: Connection; server: Connection }> {
    const a = net.transport('pe-1');
    const listener = await net.transport('registrar-a').listen('memory://registrar-a:3863');
    const accepted = waitFor(listener, 'connection');
    const pending = a.connect('memory://registrar-a:3863');
    await advance();
    await advance();
    const client = await pending;
    const [server] = await accepted;
    return { a, listener, client, server };
  }

  it('delays by the configured latency on the injected clock', async () => {
    const clock = new ManualClock();
    const net = createMemoryNetwork({ latencyMs: 50 }, { clock });
    const { client, server } = await setup(net, () => clock.advanceAsync(50));
    const got: number[] = [];
    server.on('message', (m) => got.push(seqOf(m)));
    client.send(testMessage(8, 1));
    await clock.advanceAsync(49);
    expect(got).toEqual([]);
    client.send(testMessage(8, 2));
    await clock.advanceAsync(1);
    expect(got).toEqual([1]);
    await clock.advanceAsync(49);
    expect(got).toEqual([1, 2]);
  });

  it('drops messages across a partition and carries them again after heal', async () => {
    const net = createMemoryNetwork();
    const { client, server } = await setup(net);
    const got: number[] = [];
    server.on('message', (m) => got.push(seqOf(m)));
    net.partition(['pe-1'], ['registrar-a']);
    expect(net.isReachable('pe-1', 'registrar-a')).toBe(false);
    client.send(testMessage(8, 1));
    await turn();
    expect(got).toEqual([]);
    // A connect across the partition hangs like a lost SYN, until its deadline.
    await expect(net.transport('pe-1').connect('memory://registrar-a:3863', { timeoutMs: 50 })).rejects.toMatchObject({
      code: 'RSP_ERR_TIMEOUT',
    });
    net.heal();
    const next = waitFor(server, 'message');
    client.send(testMessage(8, 2));
    expect(seqOf((await next)[0])).toBe(2);
    expect(got).toEqual([2]);
    expect(client.status).toBe('open');
  });

  it('kills a host silently: its peer hears nothing, its own side closes', async () => {
    const net = createMemoryNetwork();
    const { client, server, listener } = await setup(net);
    let serverClosed = false;
    server.on('close', () => (serverClosed = true));
    const clientClosed = waitFor(client, 'close');
    const listenerClosed = waitFor(listener, 'close');
    net.kill('pe-1');
    expect((await clientClosed)[0]?.code).toBe('RSP_ERR_CONNECTION_RESET');
    // The registrar is not the killed host: its listener stays.
    await expect(Promise.race([listenerClosed, turn().then(() => 'open')])).resolves.toBe('open');
    server.send(testMessage(8, 1));
    await turn();
    await turn();
    expect(serverClosed).toBe(false);
    expect(server.status).toBe('open');

    // Connects from a dead host go nowhere; after revive they work again.
    await expect(net.transport('pe-1').connect(listener.address, { timeoutMs: 50 })).rejects.toMatchObject({ code: 'RSP_ERR_TIMEOUT' });
    net.revive('pe-1');
    const accepted = waitFor(listener, 'connection');
    const again = await net.transport('pe-1').connect(listener.address);
    const [s2] = await accepted;
    const got = waitFor(s2, 'message');
    again.send(testMessage(8, 9));
    expect(seqOf((await got)[0])).toBe(9);
  });

  it('closes the listeners of a killed host', async () => {
    const net = createMemoryNetwork();
    const listener = await net.transport('registrar-a').listen('memory://registrar-a');
    const closed = waitFor(listener, 'close');
    net.kill('registrar-a');
    await closed;
    net.revive('registrar-a');
    await expect(net.transport('pe-1').connect('memory://registrar-a')).rejects.toMatchObject({ code: 'RSP_ERR_CONNECTION_REFUSED' });
  });

  it('loses messages with the configured probability, the same ones for the same seed', async () => {
    const run = async (seed: number): Promise<number[]> => {
      const net = createMemoryNetwork({ loss: 0.3, seed });
      const { client, server } = await setup(net);
      const got: number[] = [];
      server.on('message', (m) => got.push(seqOf(m)));
      for (let i = 0; i < 1_000; i++) client.send(testMessage(8, i));
      const last = waitFor(server, 'close');
      void client.close();
      await last;
      return got;
    };
    const first = await run(42);
    expect(first.length).toBeGreaterThan(600);
    expect(first.length).toBeLessThan(800);
    expect([...first].sort((x, y) => x - y)).toEqual(first); // what arrives keeps its order
    expect(await run(42)).toEqual(first);
    expect(await run(7)).not.toEqual(first);
  });

  it('times out a close whose FIN is lost in a partition', async () => {
    const clock = new ManualClock();
    const net = createMemoryNetwork({}, { clock });
    const { client, server } = await setup(net);
    net.partition(['pe-1'], ['registrar-a']);
    const closing = client.close();
    await turn();
    expect(server.status).toBe('open');
    clock.advance(5_000);
    expect(await closing).toBeUndefined();
    expect(client.status).toBe('closed');
  });

  it('numbers endpoints: a client gets a distinct ephemeral port per connection', async () => {
    const net = createMemoryNetwork();
    const listener = await net.transport('r').listen('memory://r:1');
    const conns: Connection[] = [];
    listener.on('connection', (c) => conns.push(c));
    const t = net.transport('pe');
    const c1 = await t.connect('memory://r:1');
    const c2 = await t.connect('memory://r:1');
    expect(c1.local.host).toBe('pe');
    expect(c1.local.port).not.toBe(c2.local.port);
    expect(conns.map((c) => c.remote)).toEqual([c1.local, c2.local]);
    const msgs = collect(conns[0]!, 'message', 1);
    c1.send(Uint8Array.from([1, 2, 3]), 4711); // application ppids need no ASAP framing
    expect(Array.from((await msgs)[0]![0])).toEqual([1, 2, 3]);
  });

  it('shows each side the identity the other host was given, and none when it was given none', async () => {
    const net = createMemoryNetwork();
    const listener = await net.transport('r', { identity: { kind: 'psk', name: 'registrar-1' } }).listen('memory://r:1');
    const conns: Connection[] = [];
    listener.on('connection', (c) => conns.push(c));
    const pe = await net.transport('pe', { identity: { kind: 'psk', name: 'pe-7' } }).connect('memory://r:1');
    const anonymous = await net.transport('stranger').connect('memory://r:1');
    expect(pe.peerIdentity).toEqual({ kind: 'psk', name: 'registrar-1' });
    expect(conns.map((c) => c.peerIdentity)).toEqual([{ kind: 'psk', name: 'pe-7' }, undefined]);
    expect(anonymous.peerIdentity).toEqual({ kind: 'psk', name: 'registrar-1' });
  });
});
