/**
 * Live fuzzing: mutated ASAP and ENRP messages (fuzz.ts's corpora and
 * mutators) sent to a real registrar's ASAP and ENRP ports over TCP, and
 * mutated TFTP packets and ASAP cookie echoes to a real TFTP PE's UDP port,
 * for a bounded time. Then every process must still be up and serving: a
 * registration and a resolution succeed and a `tftp get` completes.
 *
 * Every address in a message that decodes must be on loopback: the corpus is
 * rewritten to 127.0.0.1 / ::1 and a mutation that decodes to another address
 * is not sent (a registrar may dial an ENRP peer or a PE it learns of).
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket as TcpSocket } from 'node:net';
import { decodeAsapMessage, encodeAsapMessage } from '../../protocols/asap/index.js';
import { decodeEnrpMessage, encodeEnrpMessage } from '../../protocols/enrp/index.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { parseIpv4 } from '../../protocols/parameters/ip.js';
import { FILE_NAME, MemoryWatch, deadProcesses, legitGet, legitRegisterAndResolve, startPool, type LegitOutcome } from '../flood/common.js';
import { Prng, codecTarget, defaultFuzzTargets, type FuzzTarget } from './fuzz.js';

export interface LiveFuzzInit {
  seconds: number;
  seed: number;
  /** Connections kept busy per TCP port. Default 4. */
  connectionsPerPort?: number;
  log?: (line: string) => void;
}

export interface PortStats {
  target: string;
  sent: number;
  bytes: number;
  /** Mutations that decoded to a non-loopback address and were not sent. */
  skipped: number;
  connections: number;
  /** Connections the far end closed or reset (a refused message usually ends the stream). */
  closedByPeer: number;
  /** Bytes that came back. */
  received: number;
}

export interface LiveFuzzReport {
  ok: boolean;
  seed: number;
  seconds: number;
  problems: string[];
  ports: PortStats[];
  memory: Record<string, { before: number | undefined; peak: number | undefined; after: number | undefined }>;
  after: { registerAndResolve: LegitOutcome; get: LegitOutcome };
}

function isLoopback(text: string): boolean {
  if (text.includes(':')) return text === '::1' || text === '::' || /^::ffff:127\./i.test(text);
  const b = parseIpv4(text);
  return b !== undefined && (b[0] === 127 || text === '0.0.0.0');
}

function looksLikeIp(text: string): boolean {
  return parseIpv4(text) !== undefined || (text.includes(':') && /^[0-9a-f:.]+$/i.test(text));
}

/** Calls `visit` on every string in a decoded message; its return value replaces the string. */
function mapStrings(v: unknown, visit: (s: string) => string): unknown {
  if (typeof v === 'string') return visit(v);
  if (Array.isArray(v)) return v.map((x) => mapStrings(x, visit));
  if (v && typeof v === 'object' && !ArrayBuffer.isView(v)) {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, mapStrings(x, visit)]));
  }
  return v;
}

function allLoopback(message: unknown): boolean {
  let ok = true;
  mapStrings(message, (s) => {
    if (looksLikeIp(s) && !isLoopback(s)) ok = false;
    return s;
  });
  return ok;
}

function toLoopback<T>(message: T): T {
  return mapStrings(message, (s) => (looksLikeIp(s) && !isLoopback(s) ? (s.includes(':') ? '::1' : '127.0.0.1') : s)) as T;
}

/** A target whose corpus is `base`'s with every address moved to loopback. */
function loopbackTarget<T>(base: FuzzTarget, decode: (b: Uint8Array) => T, encode: (m: T) => Uint8Array): FuzzTarget {
  const corpus = base.corpus.flatMap((b) => {
    try {
      return [encode(toLoopback(decode(b)))];
    } catch {
      return [];
    }
  });
  return codecTarget(base.name, corpus, decode, encode, { fixLength: true });
}

/** The next input for a target, or undefined when it decodes to a non-loopback address. */
function nextInput(target: FuzzTarget, rng: Prng, decode: ((b: Uint8Array) => unknown) | undefined): Uint8Array | undefined {
  const input = target.generate(rng);
  if (!decode) return input;
  let message: unknown;
  try {
    message = decode(input);
  } catch {
    return input;
  }
  return allLoopback(message) ? input : undefined;
}

function newStats(target: string): PortStats {
  return { target, sent: 0, bytes: 0, skipped: 0, connections: 0, closedByPeer: 0, received: 0 };
}

/** Keeps `n` connections to `url` busy with inputs until `until`; a closed one is replaced. */
async function driveTcp(url: string, n: number, until: number, s: PortStats, next: () => Uint8Array | undefined): Promise<void> {
  const u = new URL(url);
  const one = async (): Promise<void> => {
    while (performance.now() < until) {
      s.connections++;
      const sock: TcpSocket = connect({ host: u.hostname, port: Number(u.port) });
      let open = true;
      let closing = false;
      const closed = new Promise<void>((resolve) =>
        sock.on('close', () => {
          if (!closing) s.closedByPeer++;
          open = false;
          resolve();
        }),
      );
      sock.on('error', () => {});
      sock.on('data', (d: Buffer) => (s.received += d.length));
      await new Promise<void>((resolve) => {
        sock.once('connect', resolve);
        sock.once('close', resolve);
      });
      // A stream that fell out of step is dropped by the registrar; after 200 messages a fresh one anyway.
      for (let k = 0; k < 200 && open && performance.now() < until; k++) {
        const input = next();
        if (!input) {
          s.skipped++;
          continue;
        }
        s.sent++;
        s.bytes += input.length;
        if (!sock.write(input)) await Promise.race([new Promise((r) => sock.once('drain', r)), closed]);
        else await new Promise<void>((r) => setImmediate(r));
      }
      closing = open;
      sock.destroy();
      await closed;
    }
  };
  await Promise.all(Array.from({ length: n }, one));
}

/** Sends inputs as datagrams to `to` from a few sockets until `until`. */
async function driveUdp(to: { host: string; port: number }, until: number, s: PortStats, next: () => Uint8Array | undefined): Promise<void> {
  const sockets: UdpSocket[] = [];
  for (let i = 0; i < 8; i++) {
    const sock = createSocket('udp4');
    sock.on('error', () => {});
    sock.on('message', (m) => (s.received += m.length));
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    sockets.push(sock);
    s.connections++;
  }
  try {
    for (let i = 0; performance.now() < until; i++) {
      const input = next();
      if (!input) {
        s.skipped++;
        continue;
      }
      if (input.length > 65_507) continue;
      await new Promise<void>((r) => sockets[i % sockets.length]!.send(input, to.port, to.host, () => r()));
      // The send callback comes back without a turn of the event loop: yield, or the TCP drivers starve.
      await new Promise<void>((r) => setImmediate(r));
      s.sent++;
      s.bytes += input.length;
    }
  } finally {
    for (const sock of sockets) sock.close();
  }
}

/** Runs the live fuzz against a fresh registrar and TFTP PE and tears them down. */
export async function runLiveFuzz(init: LiveFuzzInit): Promise<LiveFuzzReport> {
  const log = init.log ?? (() => {});
  const seed = init.seed >>> 0;
  const base = new Map(defaultFuzzTargets(seed).map((t) => [t.name, t]));
  const asap = loopbackTarget(base.get('asap')!, decodeAsapMessage, encodeAsapMessage);
  const enrp = loopbackTarget(base.get('enrp')!, decodeEnrpMessage, encodeEnrpMessage);
  const tftp = base.get('tftp')!;
  // The PE's port also takes cookie echoes: mutated ones, among the TFTP packets.
  const echoes = codecTarget(
    'echo',
    asap.corpus.filter((b) => {
      try {
        return decodeAsapMessage(b).type === AsapMessageType.CookieEcho;
      } catch {
        return false;
      }
    }),
    decodeAsapMessage,
    encodeAsapMessage,
    { fixLength: true },
  );
  // A file the TFTP corpus names, so some requests start real transfers.
  const pool = await startPool({ fileBytes: 256 * 1024, extraFiles: { a: 100_000 } });
  const watch = new MemoryWatch(pool);
  try {
    log(`live fuzz: seed ${seed}, ${init.seconds} s against registrar ${pool.asap} (enrp ${pool.enrp}) and PE udp://${pool.tftp.host}:${pool.tftp.port}`);
    const before = watch.sample();
    watch.reset();
    const rng = new Prng(seed ^ 0x11feed);
    const until = performance.now() + init.seconds * 1000;
    const n = init.connectionsPerPort ?? 4;
    const ports = [newStats('registrar-asap'), newStats('registrar-enrp'), newStats('pe-udp')];
    await Promise.all([
      driveTcp(pool.asap, n, until, ports[0]!, () => nextInput(asap, rng, decodeAsapMessage)),
      driveTcp(pool.enrp, n, until, ports[1]!, () => nextInput(enrp, rng, decodeEnrpMessage)),
      driveUdp(pool.tftp, until, ports[2]!, () => (rng.chance(0.8) ? nextInput(tftp, rng, undefined) : nextInput(echoes, rng, decodeAsapMessage))),
    ]);
    const peak = watch.peak();
    const problems = deadProcesses(pool);
    log(`live fuzz: ${ports.map((p) => `${p.target} ${p.sent} sent`).join(', ')}; checking the pool still serves`);
    const registerAndResolve = await legitRegisterAndResolve(pool, 20_000);
    const get = await legitGet(pool, 30_000);
    if (!registerAndResolve.ok) problems.push(`registration/resolution after the fuzz failed: ${registerAndResolve.detail}`);
    if (!get.ok) problems.push(`tftp get of ${FILE_NAME} after the fuzz failed: ${get.detail}`);
    problems.push(...deadProcesses(pool).filter((d) => !problems.includes(d)));
    const after = watch.sample();
    const memory: LiveFuzzReport['memory'] = {};
    for (const role of ['registrar', 'tftp-pe']) memory[role] = { before: before[role], peak: peak[role], after: after[role] };
    return { ok: problems.length === 0, seed, seconds: init.seconds, problems, ports, memory, after: { registerAndResolve, get } };
  } finally {
    watch.stop();
    await pool.close();
  }
}
