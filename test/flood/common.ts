/**
 * What the flood run and the live fuzz share: a registrar and a TFTP PE as
 * real processes on loopback, their memory, and the legitimate work that must
 * still succeed under attack (a registration, a resolution, a `tftp get`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeAsapMessage } from '../../protocols/asap/codec.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { decodeTftpPacket, encodeTftpPacket } from '../../protocols/tftp/codec.js';
import { TftpOpcode } from '../../protocols/tftp/types.js';
import { runCli, startCli, type CliProcess } from '../cli/run.js';

/** Addresses the legitimate clients use; attackers use others of 127.0.0.0/8. */
export const LEGIT_HOST = '127.0.0.1';
export const FILE_NAME = 'payload.bin';

export interface Pool {
  readonly registrar: CliProcess;
  readonly pe: CliProcess;
  /** Registrar ASAP and ENRP URLs (tcp://host:port). */
  readonly asap: string;
  readonly enrp: string;
  /** The PE's TFTP address. */
  readonly tftp: { host: string; port: number };
  readonly handle: string;
  readonly dir: string;
  readonly sha256: string;
  readonly fileBytes: number;
  /** Every process started, by role, for liveness and memory. */
  readonly procs: ReadonlyMap<string, CliProcess>;
  /** Starts another process and tracks it (killed by `close`). */
  start(role: string, args: string[]): CliProcess;
  close(): Promise<void>;
}

export interface PoolInit {
  /** Bytes of the file served (random). */
  fileBytes: number;
  /** Extra files under the root, name -> size. */
  extraFiles?: Record<string, number>;
  /** Extra flags for `tftp serve`. */
  peArgs?: string[];
}

/** Every process started here and not yet reaped, for a runner that must stop at a hard deadline. */
const running = new Set<CliProcess>();

/** SIGKILLs every process started here (a runner's last resort). */
export function killAll(): void {
  for (const p of running) p.kill('SIGKILL');
}

/** Starts a registrar (ASAP + ENRP on ephemeral ports) and a TFTP PE registered with it. */
export async function startPool(init: PoolInit): Promise<Pool> {
  const dir = await mkdtemp(join(tmpdir(), 'rserpool-flood-'));
  const content = randomBytes(init.fileBytes);
  await writeFile(join(dir, FILE_NAME), content);
  for (const [name, size] of Object.entries(init.extraFiles ?? {})) await writeFile(join(dir, name), randomBytes(size));
  // A handle no fuzzed message is likely to name, so resolutions of it stay meaningful.
  const handle = `flood-${randomBytes(4).toString('hex')}`;
  const procs = new Map<string, CliProcess>();
  const start = (role: string, args: string[]): CliProcess => {
    const p = startCli(args);
    procs.set(role, p);
    running.add(p);
    void p.exited.then(() => running.delete(p));
    const failed = p.spawnError();
    if (failed) throw failed;
    return p;
  };
  const close = async (): Promise<void> => {
    for (const p of procs.values()) p.kill('SIGKILL');
    await Promise.all([...procs.values()].map((p) => p.exited));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const registrar = start('registrar', [
      'registrar',
      '--asap',
      `tcp://${LEGIT_HOST}:0`,
      '--enrp',
      `tcp://${LEGIT_HOST}:0`,
      '--enrp-multicast',
      'off',
      '--announce',
      'off',
      '--http',
      'off',
      '--mentor-discovery',
      '200ms',
      '--print-events',
    ]);
    const m = await registrar.waitForLine(/^registrar 0x[0-9a-f]{8} asap (tcp:\/\/\S+) enrp (tcp:\/\/\S+)/, 30_000);
    // With ENRP on, a registrar answers resolutions once it has looked for a mentor peer (and found none).
    await registrar.waitForLine(/^synchronised$/, 30_000);
    const asap = m[1]!;
    const enrp = m[2]!;
    const pe = start('tftp-pe', [
      'tftp',
      'serve',
      '--root',
      dir,
      '--registrar',
      asap,
      '--host',
      LEGIT_HOST,
      '--port',
      '0',
      '--handle',
      handle,
      ...(init.peArgs ?? []),
    ]);
    const s = await pe.waitForLine(/^serving .+ on (\S+):(\d+) as PE/, 30_000);
    return {
      registrar,
      pe,
      asap,
      enrp,
      tftp: { host: s[1]!, port: Number(s[2]) },
      handle,
      dir,
      sha256: createHash('sha256').update(content).digest('hex'),
      fileBytes: init.fileBytes,
      procs,
      start,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Resident set size of a process in bytes, or undefined when it is gone. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Samples the RSS of every tracked process; `peak` is the largest seen since the last `reset`. */
export class MemoryWatch {
  readonly #pool: Pool;
  readonly #peak = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;

  constructor(pool: Pool, everyMs = 200) {
    this.#pool = pool;
    this.#timer = setInterval(() => this.sample(), everyMs);
    this.#timer.unref();
  }

  sample(): Record<string, number | undefined> {
    const now: Record<string, number | undefined> = {};
    for (const [role, p] of this.#pool.procs) {
      const rss = rssBytes(p.pid);
      now[role] = rss;
      if (rss !== undefined && rss > (this.#peak.get(role) ?? 0)) this.#peak.set(role, rss);
    }
    return now;
  }

  peak(): Record<string, number> {
    this.sample();
    return Object.fromEntries(this.#peak);
  }

  reset(): void {
    this.#peak.clear();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** Roles whose process has exited, with how and its last output. */
export function deadProcesses(pool: Pool): string[] {
  const dead: string[] = [];
  for (const [role, p] of pool.procs) {
    const code = p.exitStatus();
    if (code !== undefined) dead.push(`${role} exited (${code}): ${p.output().slice(-600)}`);
  }
  return dead;
}

export interface LegitOutcome {
  ok: boolean;
  ms: number;
  detail: string;
}

async function timed(what: () => Promise<string>): Promise<LegitOutcome> {
  const t0 = performance.now();
  try {
    const detail = await what();
    return { ok: true, ms: Math.round(performance.now() - t0), detail };
  } catch (err) {
    return { ok: false, ms: Math.round(performance.now() - t0), detail: (err as Error).message.split('\n').slice(0, 6).join(' | ') };
  }
}

/** `rserpool tftp get` of the served file; ok when it exits 0 and the SHA-256 matches. */
export function legitGet(pool: Pool, timeoutMs: number): Promise<LegitOutcome> {
  return timed(async () => {
    const out = join(pool.dir, `got-${randomBytes(4).toString('hex')}.bin`);
    const r = await runCli(['tftp', 'get', `${pool.handle}:/${FILE_NAME}`, '-o', out, '--registrar', pool.asap, '--json', '--no-progress'], { timeoutMs });
    if (r.code !== 0) throw new Error(`tftp get exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
    const sha = createHash('sha256')
      .update(await readFile(out))
      .digest('hex');
    await rm(out, { force: true });
    if (sha !== pool.sha256) throw new Error(`tftp get wrote a file with SHA-256 ${sha}, expected ${pool.sha256}`);
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as { mbPerSec: number; failovers: number };
    return `${pool.fileBytes} bytes, sha256 ok, ${j.mbPerSec} MB/s, ${j.failovers} failovers`;
  });
}

/**
 * A second PE registers (`rserpool register`) and a resolution of the pool
 * returns it; the sidecar then deregisters.
 */
export function legitRegisterAndResolve(pool: Pool, timeoutMs: number): Promise<LegitOutcome> {
  return timed(async () => {
    const id = 0x1000_0000 + Math.floor(Math.random() * 0x0fff_ffff);
    const hex = `0x${id.toString(16).padStart(8, '0')}`;
    // The TFTP PE's policy, at full load so that a `tftp get` still picks the real PE.
    const sidecar = pool.start(`register-${hex}`, [
      'register',
      '--handle',
      pool.handle,
      '--transport',
      `udp://${LEGIT_HOST}:9`,
      '--registrar',
      pool.asap,
      '--identifier',
      hex,
      '--policy',
      'least-used:1',
    ]);
    try {
      await sidecar.waitForLine(new RegExp(`^registered ${hex} under`), timeoutMs);
      const r = await runCli(['resolve', pool.handle, '--registrar', pool.asap, '--json', '--items', '16'], { timeoutMs });
      if (r.code !== 0) throw new Error(`resolve exited ${r.code}: ${r.stderr.trim()}`);
      const ids = (JSON.parse(r.stdout) as { elements: { identifier: number }[] }).elements.map((e) => e.identifier);
      if (!ids.includes(id)) throw new Error(`resolution of ${pool.handle} lacks the new PE ${hex}: ${ids.join(', ')}`);
      return `registered ${hex}, resolved ${ids.length} PEs`;
    } finally {
      sidecar.kill('SIGTERM');
      await sidecar.exited;
      (pool.procs as Map<string, CliProcess>).delete(`register-${hex}`);
    }
  });
}

/**
 * A real state cookie, taken as a legitimate client would: an RRQ asking for
 * cookies, ACKs until the PE's first ASAP_COOKIE, then an ERROR to end it.
 */
export async function harvestCookie(pool: Pool, timeoutMs = 10_000): Promise<Uint8Array> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, LEGIT_HOST, r));
  const rrq = encodeTftpPacket({
    opcode: TftpOpcode.Rrq,
    filename: FILE_NAME,
    mode: 'octet',
    options: [
      ['blksize', '1468'],
      ['windowsize', '16'],
      ['rserpool-cookie', '1'],
    ],
  });
  try {
    return await new Promise<Uint8Array>((resolve, reject) => {
      const resend = setInterval(() => sock.send(rrq, pool.tftp.port, pool.tftp.host), 1000);
      const deadline = setTimeout(() => {
        clearInterval(resend);
        reject(new Error(`no cookie from the PE within ${timeoutMs} ms`));
      }, timeoutMs);
      sock.on('message', (msg, from) => {
        const ack = (block: number): void => sock.send(encodeTftpPacket({ opcode: TftpOpcode.Ack, block }), from.port, from.address);
        if (msg.length > 0 && msg[0] !== 0) {
          try {
            const m = decodeAsapMessage(msg);
            if (m.type !== AsapMessageType.Cookie) return;
            clearTimeout(deadline);
            clearInterval(resend);
            // Ends the transfer; the socket closes once the ERROR has left.
            sock.send(encodeTftpPacket({ opcode: TftpOpcode.Error, code: 0, message: 'done' }), from.port, from.address, () => resolve(m.cookie));
          } catch {
            // not ASAP after all
          }
          return;
        }
        try {
          const p = decodeTftpPacket(msg);
          clearInterval(resend);
          if (p.opcode === TftpOpcode.Oack) ack(0);
          else if (p.opcode === TftpOpcode.Data) ack(p.block);
          else if (p.opcode === TftpOpcode.Error) {
            clearTimeout(deadline);
            reject(new Error(`the PE refused the cookie harvest: ${p.message}`));
          }
        } catch {
          // ignore
        }
      });
      sock.send(rrq, pool.tftp.port, pool.tftp.host);
    });
  } finally {
    sock.close();
  }
}

export function mib(bytes: number | undefined): string {
  return bytes === undefined ? 'gone' : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
