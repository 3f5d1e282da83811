/**
 * npm run bench -- transport [--quick] [--json]
 * Round trips/s with one request outstanding (100-byte ASAP-framed message,
 * echoed) and bulk MB/s (64 KiB frames, send() honouring drain), for the
 * memory, tcp, tls, sctp+udp and (as root, with raw-socket) sctp transports
 * in the same run, over 127.0.0.1.
 */
import { createMemoryNetwork } from '../../lib/transport/memory.js';
import { createSctpTransport, createSctpUdpTransport } from '../../lib/transport/sctp.js';
import { createTcpTransport } from '../../lib/transport/tcp.js';
import { createTlsTransport } from '../../lib/transport/tls.js';
import type { Connection, MessageTransport } from '../../lib/transport/types.js';
import { generateTestCerts, hasOpenssl } from '../transport/certs.js';
import { testMessage } from '../transport/util.js';
import type { BenchContext } from './context.js';

interface Subject {
  name: string;
  server: MessageTransport;
  client: MessageTransport;
  listenUrl: string;
}

async function connectPair(s: Subject): Promise<{ client: Connection; server: Connection; close(): Promise<void> }> {
  const listener = await s.server.listen(s.listenUrl);
  const accepted = new Promise<Connection>((resolve) => listener.once('connection', resolve));
  const client = await s.client.connect(listener.address);
  const server = await accepted;
  return {
    client,
    server,
    async close() {
      client.abort();
      server.abort();
      await listener.close();
    },
  };
}

async function roundtrips(s: Subject, ms: number): Promise<number> {
  const { client, server, close } = await connectPair(s);
  server.on('message', (m) => server.send(m));
  const msg = testMessage(100, 1);
  const run = (duration: number): Promise<number> =>
    new Promise((resolve) => {
      let n = 0;
      const end = performance.now() + duration;
      const onMessage = (): void => {
        n++;
        if ((n & 63) === 0 && performance.now() >= end) {
          client.off('message', onMessage);
          resolve(n);
          return;
        }
        client.send(msg);
      };
      client.on('message', onMessage);
      client.send(msg);
    });
  await run(Math.min(200, ms / 5)); // warm-up
  const start = performance.now();
  const n = await run(ms);
  const rate = (n * 1000) / (performance.now() - start);
  await close();
  return rate;
}

async function bulk(s: Subject, ms: number): Promise<number> {
  const { client, server, close } = await connectPair(s);
  const frame = testMessage(65_536, 1);
  let received = 0;
  server.on('message', (m) => (received += m.length));
  const start = performance.now();
  const end = start + ms;
  while (performance.now() < end) {
    while (client.send(frame));
    await new Promise<void>((resolve) => client.once('drain', resolve));
  }
  const elapsed = (performance.now() - start) / 1000;
  const mbps = received / elapsed / 1e6;
  await close();
  return mbps;
}

export async function run(ctx: BenchContext): Promise<void> {
  const ms = ctx.quick ? 500 : 2_000;
  const network = createMemoryNetwork();
  const subjects: Subject[] = [
    { name: 'memory', server: network.transport('server'), client: network.transport('client'), listenUrl: 'memory://server:1' },
    { name: 'tcp', server: createTcpTransport(), client: createTcpTransport(), listenUrl: 'tcp://127.0.0.1:0' },
  ];
  const certs = hasOpenssl() ? generateTestCerts() : undefined;
  if (certs) {
    subjects.push({
      name: 'tls',
      server: createTlsTransport({ cert: certs.server.cert, key: certs.server.key }),
      client: createTlsTransport({ ca: certs.ca.cert }),
      listenUrl: 'tls://127.0.0.1:0',
    });
  } else ctx.log('transport: no openssl, skipping tls');
  subjects.push({ name: 'sctp+udp', server: createSctpUdpTransport(), client: createSctpUdpTransport(), listenUrl: 'sctp+udp://127.0.0.1:0' });
  const raw = createSctpTransport();
  const rawProbe = await raw.listen('sctp://127.0.0.1:0').then(
    (l) => l.close().then(() => undefined),
    (err: Error) => err.message,
  );
  if (rawProbe === undefined) subjects.push({ name: 'sctp', server: raw, client: createSctpTransport(), listenUrl: 'sctp://127.0.0.1:0' });
  else ctx.log(`transport: skipping sctp:// (${rawProbe})`);
  const roundtripRates = new Map<string, number>();
  try {
    for (const s of subjects) {
      ctx.log(`transport: ${s.name}`);
      const rate = await roundtrips(s, ms);
      roundtripRates.set(s.name, rate);
      ctx.report({ name: 'roundtrip', value: rate, unit: 'rt/s', transport: s.name, bytes: 100 });
      ctx.report({ name: 'bulk', value: await bulk(s, ms), unit: 'MB/s', transport: s.name, bytes: 65_536 });
    }
    for (const name of ['sctp+udp', 'sctp']) {
      const tcp = roundtripRates.get('tcp');
      const sctp = roundtripRates.get(name);
      if (tcp && sctp) ctx.log(`transport: tcp/${name} round trips ${(tcp / sctp).toFixed(2)}x (target <= 3x)`);
    }
  } finally {
    certs?.remove();
  }
}
