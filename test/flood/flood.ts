/**
 * A bounded flood against a registrar and a TFTP PE running as real
 * processes on loopback: idle TCP connections to the ASAP port, bare RRQs
 * never answered, and ASAP_COOKIE_ECHOes from addresses other than the
 * cookie's client (a real cookie replayed, forged ones, garbage). Meanwhile a
 * PE registers and a `tftp get` must complete. Reports memory per process and
 * the bytes the PE sent per byte the attackers sent (their sockets count both;
 * they never answer, so all of it is before the client answered).
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket as TcpSocket } from 'node:net';
import { encodeAsapMessage } from '../../protocols/asap/codec.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { encodeTftpPacket } from '../../protocols/tftp/codec.js';
import { TftpOpcode } from '../../protocols/tftp/types.js';
import { FILE_NAME, MemoryWatch, deadProcesses, harvestCookie, legitGet, legitRegisterAndResolve, startPool, type LegitOutcome } from './common.js';

export interface FloodInit {
  connections: number;
  rrqs: number;
  echoes: number;
  /** Extra `tftp serve` flags for the PE (e.g. --require-options). */
  peArgs?: string[];
  /** Size of the file the legitimate client downloads. Default 4 MiB. */
  fileBytes?: number;
  /** Echoes (and RRQs) sent per second. Default 2,000. */
  ratePerSec?: number;
  /** The replies to a datagram are counted until the attackers have heard nothing this long. Default 2.5 s. */
  quietMs?: number;
  /** Ceiling on that wait. Default 20 s. */
  drainMs?: number;
  /** Deadline for each legitimate operation. Default 60 s. */
  legitTimeoutMs?: number;
  log?: (line: string) => void;
}

/** A kind of datagram the attackers send, each from its own socket (address, port). */
export interface UdpAttackStats {
  kind: string;
  sources: number;
  datagramsSent: number;
  bytesSent: number;
  /** Sources that got at least one datagram back. */
  answered: number;
  datagramsReceived: number;
  bytesReceived: number;
  /** bytesReceived / bytesSent: what the PE sent per byte it was sent. */
  factor: number;
  /** Most bytes any one source got back. */
  maxBytesPerSource: number;
}

export interface TcpAttackStats {
  attempted: number;
  /** Connections whose TCP handshake completed (the kernel's accept queue, not yet the registrar's admission). */
  accepted: number;
  /** Connect attempts that failed, by error code. */
  refused: Record<string, number>;
  /** Accepted connections the registrar closed before the flood ended. */
  closedByRegistrar: number;
  /** Of those, closed within a second of connecting: turned away by a connection cap. */
  closedAtOnce: number;
  /** Open when the legitimate work started. */
  openAtLegit: number;
  /** Still open when the flood ended. */
  openAtEnd: number;
}

export interface MemoryFigures {
  before: number | undefined;
  peakDuring: number | undefined;
  after: number | undefined;
}

export interface FloodReport {
  ok: boolean;
  problems: string[];
  counts: { connections: number; rrqs: number; echoes: number };
  memory: Record<string, MemoryFigures>;
  connections: TcpAttackStats;
  rrq: UdpAttackStats;
  echoes: UdpAttackStats[];
  legit: { registerAndResolve: LegitOutcome; get: LegitOutcome };
  cookieBytes: number;
  elapsedMs: number;
}

const CONNECT_TIMEOUT_MS = 5000;

/** Source addresses per attack, away from the legitimate clients' 127.0.0.1. */
const TCP_SOURCES = hosts(10, 8);
const RRQ_SOURCES = hosts(20, 8);
const ECHO_SOURCES = hosts(30, 8);

function hosts(from: number, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `127.0.0.${from + i}`);
}

/**
 * UDP attackers: one socket per datagram, so every datagram is a new client
 * to the PE. Counts what each socket sends and gets back, never answers.
 */
class UdpSwarm {
  readonly #sockets: UdpSocket[] = [];
  readonly #stats = new Map<string, UdpAttackStats>();
  readonly #perSource = new Map<UdpSocket, { kind: string; bytes: number }>();
  #lastHeard = performance.now();
  #onHeard: (() => void) | undefined;

  constructor(kinds: readonly string[]) {
    for (const kind of kinds) {
      this.#stats.set(kind, {
        kind,
        sources: 0,
        datagramsSent: 0,
        bytesSent: 0,
        answered: 0,
        datagramsReceived: 0,
        bytesReceived: 0,
        factor: 0,
        maxBytesPerSource: 0,
      });
    }
  }

  /** Sends `count` datagrams to `to`, `ratePerSec` at most, round-robin over `sources`. */
  async send(
    count: number,
    sources: readonly string[],
    to: { host: string; port: number },
    ratePerSec: number,
    datagram: (i: number) => { kind: string; bytes: Uint8Array },
  ): Promise<void> {
    const batch = Math.max(1, Math.ceil(ratePerSec / 50));
    const t0 = performance.now();
    for (let i = 0; i < count; i += batch) {
      const n = Math.min(batch, count - i);
      await Promise.all(Array.from({ length: n }, (_, k) => this.#one(sources[(i + k) % sources.length]!, to, datagram(i + k))));
      // Pace to the rate: the next batch is due at t0 + (sent / rate).
      const due = t0 + ((i + n) / ratePerSec) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise<void>((r) => setTimeout(r, wait));
    }
  }

  async #one(source: string, to: { host: string; port: number }, d: { kind: string; bytes: Uint8Array }): Promise<void> {
    const s = this.#stats.get(d.kind)!;
    const sock = createSocket('udp4');
    sock.on('error', () => {});
    await new Promise<void>((resolve) => sock.bind(0, source, resolve));
    this.#sockets.push(sock);
    const mine = { kind: d.kind, bytes: 0 };
    this.#perSource.set(sock, mine);
    sock.on('message', (msg) => {
      if (mine.bytes === 0) s.answered++;
      mine.bytes += msg.length;
      s.datagramsReceived++;
      s.bytesReceived += msg.length;
      this.#lastHeard = performance.now();
      this.#onHeard?.();
    });
    s.sources++;
    await new Promise<void>((resolve) =>
      sock.send(d.bytes, to.port, to.host, (err) => {
        if (!err) {
          s.datagramsSent++;
          s.bytesSent += d.bytes.length;
        }
        resolve();
      }),
    );
  }

  /** Resolves once nothing has arrived for `quietMs`, or after `maxMs`. */
  async quiet(quietMs: number, maxMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    let cap: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve) => {
        const arm = (): void => {
          clearTimeout(timer);
          timer = setTimeout(resolve, Math.max(0, quietMs - (performance.now() - this.#lastHeard)));
        };
        cap = setTimeout(resolve, maxMs);
        this.#onHeard = arm;
        arm();
      });
    } finally {
      clearTimeout(timer);
      clearTimeout(cap);
      this.#onHeard = undefined;
    }
  }

  stats(): UdpAttackStats[] {
    for (const [, mine] of this.#perSource) {
      const s = this.#stats.get(mine.kind)!;
      s.maxBytesPerSource = Math.max(s.maxBytesPerSource, mine.bytes);
    }
    return [...this.#stats.values()].map((s) => ({ ...s, factor: s.bytesSent === 0 ? 0 : s.bytesReceived / s.bytesSent }));
  }

  close(): void {
    for (const s of this.#sockets) s.close();
    this.#sockets.length = 0;
  }
}

/** Idle TCP connections: connect, send nothing, read whatever comes. */
class IdleConnections {
  readonly #sockets = new Set<TcpSocket>();
  readonly stats: TcpAttackStats = { attempted: 0, accepted: 0, refused: {}, closedByRegistrar: 0, closedAtOnce: 0, openAtLegit: 0, openAtEnd: 0 };
  #closing = false;

  async open(count: number, sources: readonly string[], to: { host: string; port: number }, batch = 250): Promise<void> {
    for (let i = 0; i < count; i += batch) {
      const n = Math.min(batch, count - i);
      await Promise.all(Array.from({ length: n }, (_, k) => this.#one(sources[(i + k) % sources.length]!, to)));
    }
  }

  #one(source: string, to: { host: string; port: number }): Promise<void> {
    this.stats.attempted++;
    return new Promise((resolve) => {
      const sock = connect({ host: to.host, port: to.port, localAddress: source });
      let connected = false;
      let connectedAt = 0;
      // A full accept queue drops SYNs silently; the kernel would retry for minutes.
      sock.setTimeout(CONNECT_TIMEOUT_MS, () => {
        if (!connected) sock.destroy(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' }));
      });
      sock.on('connect', () => {
        connected = true;
        connectedAt = performance.now();
        sock.setTimeout(0);
        this.stats.accepted++;
        this.#sockets.add(sock);
        sock.resume();
        resolve();
      });
      sock.on('error', (err: NodeJS.ErrnoException) => {
        if (!connected) {
          const code = err.code ?? 'error';
          this.stats.refused[code] = (this.stats.refused[code] ?? 0) + 1;
          resolve();
        }
      });
      sock.on('close', () => {
        if (connected && !this.#closing) {
          this.stats.closedByRegistrar++;
          if (performance.now() - connectedAt < 1000) this.stats.closedAtOnce++;
        }
        this.#sockets.delete(sock);
      });
    });
  }

  get openNow(): number {
    return this.#sockets.size;
  }

  close(): void {
    this.#closing = true;
    this.stats.openAtEnd = this.#sockets.size;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }
}

function urlHostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) };
}

function echo(cookie: Uint8Array): Uint8Array {
  return encodeAsapMessage({ type: AsapMessageType.CookieEcho, cookie });
}

/** Runs the flood against a fresh pool and tears it down; never throws for what the flood does to the pool. */
export async function runFlood(init: FloodInit): Promise<FloodReport> {
  const log = init.log ?? (() => {});
  const t0 = performance.now();
  const problems: string[] = [];
  const pool = await startPool({ fileBytes: init.fileBytes ?? 4 * 2 ** 20, ...(init.peArgs ? { peArgs: init.peArgs } : {}) });
  const watch = new MemoryWatch(pool);
  const tcp = new IdleConnections();
  const rrqs = new UdpSwarm(['bare-rrq']);
  const echoes = new UdpSwarm(['replayed-cookie', 'forged-cookie', 'garbage-cookie']);
  try {
    const cookie = await harvestCookie(pool);
    log(`pool up: registrar ${pool.asap}, PE udp://${pool.tftp.host}:${pool.tftp.port}, cookie ${cookie.length} bytes`);
    const before = watch.sample();
    watch.reset();

    const rate = init.ratePerSec ?? 2000;
    const bareRrq = encodeTftpPacket({ opcode: TftpOpcode.Rrq, filename: FILE_NAME, mode: 'octet', options: [] });
    const replayed = echo(cookie);
    const datagram = (i: number): { kind: string; bytes: Uint8Array } => {
      const k = i % 10;
      if (k < 6) return { kind: 'replayed-cookie', bytes: replayed };
      // Forged: a real cookie's version byte and length, the rest random.
      if (k < 8) return { kind: 'forged-cookie', bytes: echo(Uint8Array.of(cookie[0] ?? 1, ...randomBytes(cookie.length - 1))) };
      return { kind: 'garbage-cookie', bytes: echo(randomBytes(1 + (i % 200))) };
    };

    log(`flood: ${init.connections} idle connections, ${init.rrqs} bare RRQs, ${init.echoes} cookie echoes`);
    const connecting = tcp.open(init.connections, TCP_SOURCES, urlHostPort(pool.asap));
    const rrqSent = rrqs.send(init.rrqs, RRQ_SOURCES, pool.tftp, rate, () => ({ kind: 'bare-rrq', bytes: bareRrq }));
    const echoSent = echoes.send(init.echoes, ECHO_SOURCES, pool.tftp, rate, datagram);
    // The legitimate work starts once the connections are held and the RRQs are out, while the echoes go on.
    await Promise.all([connecting, rrqSent]);
    tcp.stats.openAtLegit = tcp.openNow;
    log(`connections: ${tcp.openNow} open of ${tcp.stats.attempted} tried; RRQs sent; legitimate work starts`);
    const legitTimeout = init.legitTimeoutMs ?? 60_000;
    const [registerAndResolve, get] = await Promise.all([legitRegisterAndResolve(pool, legitTimeout), legitGet(pool, legitTimeout), echoSent]);
    log(
      `legitimate work done (register+resolve ${registerAndResolve.ok ? 'ok' : 'FAILED'}, get ${get.ok ? 'ok' : 'FAILED'}); waiting for the PE's replies to end`,
    );
    await Promise.all([rrqs.quiet(init.quietMs ?? 2500, init.drainMs ?? 20_000), echoes.quiet(init.quietMs ?? 2500, init.drainMs ?? 20_000)]);
    const peak = watch.peak();
    tcp.close();
    rrqs.close();
    echoes.close();
    // Give the processes a moment to let go of what the attackers held before the "after" figure.
    await new Promise<void>((r) => setTimeout(r, 2000));
    const after = watch.sample();

    if (!registerAndResolve.ok) problems.push(`legitimate registration/resolution failed: ${registerAndResolve.detail}`);
    if (!get.ok) problems.push(`legitimate tftp get failed: ${get.detail}`);
    problems.push(...deadProcesses(pool));
    const memory: Record<string, MemoryFigures> = {};
    for (const role of ['registrar', 'tftp-pe']) memory[role] = { before: before[role], peakDuring: peak[role], after: after[role] };
    return {
      ok: problems.length === 0,
      problems,
      counts: { connections: init.connections, rrqs: init.rrqs, echoes: init.echoes },
      memory,
      connections: tcp.stats,
      rrq: rrqs.stats()[0]!,
      echoes: echoes.stats(),
      legit: { registerAndResolve, get },
      cookieBytes: cookie.length,
      elapsedMs: Math.round(performance.now() - t0),
    };
  } finally {
    watch.stop();
    tcp.close();
    rrqs.close();
    echoes.close();
    await pool.close();
  }
}

/** The echoes of every kind together. */
export function totalEchoes(stats: readonly UdpAttackStats[]): UdpAttackStats {
  const t: UdpAttackStats = {
    kind: 'all-echoes',
    sources: 0,
    datagramsSent: 0,
    bytesSent: 0,
    answered: 0,
    datagramsReceived: 0,
    bytesReceived: 0,
    factor: 0,
    maxBytesPerSource: 0,
  };
  for (const s of stats) {
    t.sources += s.sources;
    t.datagramsSent += s.datagramsSent;
    t.bytesSent += s.bytesSent;
    t.answered += s.answered;
    t.datagramsReceived += s.datagramsReceived;
    t.bytesReceived += s.bytesReceived;
    t.maxBytesPerSource = Math.max(t.maxBytesPerSource, s.maxBytesPerSource);
  }
  t.factor = t.bytesSent === 0 ? 0 : t.bytesReceived / t.bytesSent;
  return t;
}
