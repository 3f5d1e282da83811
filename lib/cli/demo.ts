/**
 * `rserpool demo` (npm start): the TFTP pool on loopback with no
 * configuration. Two registrars (ENRP), three TFTP pool elements over a
 * temporary directory with a generated file, a pool-user download whose
 * serving PE is killed with -9 half-way, the failover as it happens, the
 * SHA-256 checked; then a rolling restart: the pool's three PEs get SIGTERM
 * one after another during a second download, which they send on, and new
 * PEs take their places.
 * Everything cleaned up.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTftpClient, type PeTarget, type TftpGetResult } from '../tftp/client/index.js';
import { silentLogger } from '../logger.js';
import { CliUsageError, type Command } from './command.js';
import { hex32 } from './process.js';
import { duration, integer, parseOptions, str, type OptionSpec } from './options.js';
import { CLI, Children, startRegistrars } from './demo-common.js';
import { counterDemo } from './demo-counter.js';

const specs: Record<string, OptionSpec> = {
  json: { type: 'boolean', help: 'end with one JSON line {sha256Match, stallMs, failovers, bytes, mbPerSec, rollingRestart}' },
  size: { type: 'string', help: 'MiB in the generated file', default: '100' },
  'dead-after': { type: 'string', help: 'a PE silent this long is dead (the client fails over); default: follows the measured round trip, 200-600ms' },
  counter: { type: 'boolean', help: 'the counter demo instead: a custom TCP service whose count survives failover' },
  requests: { type: 'string', help: '(--counter) requests the client sends', default: '24' },
};

const FILE = 'pool-demo.bin';

export const demoCommand: Command = {
  async run(argv) {
    const { values, positionals } = parseOptions('demo [--json] [--size MIB] [--counter]', argv, specs);
    if (values.help) return 0;
    if (positionals.length > 0) throw new CliUsageError(`unexpected argument '${positionals[0]}'`);
    if (values.counter) return counterDemo.run(values);
    const size = integer('size', str(values, 'size'), 1, 4096)! * 2 ** 20;
    const deadAfterMs = duration('dead-after', str(values, 'dead-after'));
    const json = values.json === true;
    const say = (line: string): void => void (json ? process.stderr : process.stdout).write(`${line}\n`);
    const started = performance.now();
    const children = new Children();
    const dir = await mkdtemp(join(tmpdir(), 'rserpool-demo-'));
    const onSignal = (): void => {
      children.killAll();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      const root = join(dir, 'root');
      const sha256 = await generate(join(root, FILE), size);
      say(`file         ${FILE}: ${mb(size)} of random bytes, sha256 ${sha256.slice(0, 16)}...`);

      // 1. Two registrars sharing the handlespace by ENRP.
      const reg = await startRegistrars(children);
      say(`registrars   ${reg.map((r) => `${hex32(r.id)} at ${r.asap}`).join(', ')}  (ENRP between them)`);

      // 2. Three TFTP pool elements over the same directory, one cookie secret for the pool,
      // in a file only this user reads (the temporary directory is 0700 and removed at the end).
      const secretFile = join(dir, 'cookie.secret');
      await writeFile(secretFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
      const spawnPe = async (name: string): Promise<DemoPe> => {
        const child = children.spawn(name, [
          CLI,
          'tftp',
          'serve',
          '--root',
          root,
          '--handle',
          'files',
          '--host',
          '127.0.0.1',
          '--port',
          '0',
          '--cookie-secret-file',
          secretFile,
          ...reg.flatMap((r) => ['--registrar', r.asap]),
        ]);
        const m = await child.waitFor(/^serving .* on (\S+):(\d+) as PE 0x([0-9a-f]{8}) under files$/, 15_000);
        return { child, address: `${m[1]}:${m[2]}`, identifier: parseInt(m[3]!, 16) };
      };
      const pes = await Promise.all([1, 2, 3].map((n) => spawnPe(`PE ${n}`)));
      say(`pool         'files': ${pes.map((p) => `${hex32(p.identifier)} udp://${p.address}`).join(', ')}`);

      // 3. Download through the pool; kill -9 the serving PE half-way.
      const client = createTftpClient({ registrars: reg.map((r) => r.asap), ...(deadAfterMs !== undefined ? { deadAfterMs } : {}) }, { logger: silentLogger });
      let killed: { pe: number; atBytes: number } | undefined;
      let lastLine = 0;
      let result: TftpGetResult;
      try {
        result = await client.get('files', `/${FILE}`, join(dir, 'downloaded.bin'), {
          progressIntervalMs: 20,
          onNegotiated: (n) =>
            say(`download     from ${peName(n.pe)}: blksize ${n.blksize}, windowsize ${n.windowsize}, cookie every ${n.cookieInterval ?? '-'} blocks`),
          onProgress: (p) => {
            const now = performance.now();
            if (now - lastLine >= 250) {
              lastLine = now;
              say(`             ${mb(p.bytes).padStart(9)} of ${mb(size)}  ${(p.bytesPerSecond / 1e6).toFixed(0).padStart(4)} MB/s  from ${peName(p.pe)}`);
            }
            if (!killed && p.bytes >= size / 2 && p.pe?.identifier !== undefined) {
              const victim = pes.find((x) => x.identifier === p.pe!.identifier);
              if (victim?.child.alive) {
                victim.child.proc.kill('SIGKILL');
                killed = { pe: victim.identifier, atBytes: p.bytes };
                say(`kill -9      ${peName(p.pe)} at ${mb(p.bytes)}, while it serves the download`);
              }
            }
          },
          onFailover: (f) =>
            say(
              `failover     ${peName(f.from)} -> ${peName(f.to)} at block ${f.atBlock}, ${f.cookieEchoed ? 'cookie echoed' : 'NO cookie'}, stall ${Math.round(f.stallMs)} ms`,
            ),
        });
      } finally {
        await client.close();
      }
      const match = result.sha256 === sha256;
      const served = result.servedBy.map((s) => `${peName(s.pe)} blocks ${s.fromBlock}-${s.toBlock}`);
      say('');
      say(
        `summary      ${mb(result.bytes)} in ${(result.elapsedMs / 1000).toFixed(2)} s, ${result.mbPerSec.toFixed(1)} MB/s; sha256 ${match ? 'matches' : 'DIFFERS'}`,
      );
      say(`             ${result.failovers} failover(s), stall ${Math.round(result.stallMs)} ms (last block from the dead PE to the first from the next)`);
      say(`             served by ${served.join(', ')}`);

      // 4. A rolling restart of the pool's three PEs (a new one first takes the killed PE's place):
      // during a second download each in turn gets SIGTERM, tells the client where to go on and
      // leaves, and its replacement joins.
      // A new client must not be handed the killed PE: wait until the registrars have dropped it.
      const gone = killed ? new RegExp(`^pe-removed ${hex32(killed.pe)} `) : undefined;
      if (gone) await Promise.race(reg.map((r) => r.child.waitFor(gone, 15_000))).catch(() => {});
      const old = pes.filter((p) => p.child.alive);
      let n = pes.length;
      while (old.length < pes.length) old.push(await spawnPe(`PE ${++n}`));
      say('');
      say(`rolling      SIGTERM to ${old.map((p) => hex32(p.identifier)).join(', ')} one after another during a download, each replaced by a new PE`);
      const rolled = await rollingDownload(
        old,
        () => spawnPe(`PE ${++n}`),
        size,
        join(dir, 'rolled.bin'),
        reg.map((r) => r.asap),
        deadAfterMs,
        say,
      );
      const rolledMatch = rolled.result.sha256 === sha256;
      say(`             new PEs ${rolled.joined.map(hex32).join(', ')} joined`);
      say(
        `             ${mb(rolled.result.bytes)} in ${(rolled.result.elapsedMs / 1000).toFixed(2)} s; sha256 ${rolledMatch ? 'matches' : 'DIFFERS'}; ` +
          `${rolled.result.failovers} failover(s), stalls ${rolled.stalls.map((ms) => `${Math.round(ms)} ms`).join(', ') || '-'}`,
      );
      say(`             ${((performance.now() - started) / 1000).toFixed(1)} s in all; every process and file cleaned up`);
      if (json) {
        process.stdout.write(
          `${JSON.stringify({
            sha256Match: match,
            stallMs: Math.round(result.stallMs),
            failovers: result.failovers,
            bytes: result.bytes,
            mbPerSec: Number(result.mbPerSec.toFixed(2)),
            killedPe: killed ? hex32(killed.pe) : null,
            rollingRestart: {
              sha256Match: rolledMatch,
              stallMs: Math.round(rolled.result.stallMs),
              failovers: rolled.result.failovers,
              stalls: rolled.stalls.map(Math.round),
              stopped: rolled.stopped.map(hex32),
              joined: rolled.joined.map(hex32),
            },
            servedBy: result.servedBy.map((s) => ({
              pe: s.pe.identifier === undefined ? null : hex32(s.pe.identifier),
              fromBlock: s.fromBlock,
              toBlock: s.toBlock,
            })),
          })}\n`,
        );
      }
      return match &&
        result.failovers >= 1 &&
        killed !== undefined &&
        rolledMatch &&
        rolled.stopped.length === old.length &&
        rolled.joined.length === old.length
        ? 0
        : 1;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await children.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
};

interface DemoPe {
  child: Children['all'][number];
  address: string;
  identifier: number;
}

/**
 * Downloads the file again, lock-step and paced so it lasts, and stops the old PEs one
 * after another with SIGTERM as it passes 1/4, 2/4, 3/4 (the serving one
 * first when it is old): each leaves the pool and sends the client on, and
 * a new PE is started in its place.
 */
async function rollingDownload(
  old: DemoPe[],
  replace: () => Promise<DemoPe>,
  size: number,
  path: string,
  registrars: string[],
  deadAfterMs: number | undefined,
  say: (line: string) => void,
): Promise<{ result: TftpGetResult; stopped: number[]; joined: number[]; stalls: number[] }> {
  const client = createTftpClient({ registrars, windowsize: 1, ...(deadAfterMs !== undefined ? { deadAfterMs } : {}) }, { logger: silentLogger });
  const stopped: number[] = [];
  const stalls: number[] = [];
  const exits: Promise<unknown>[] = [];
  const joining: Promise<DemoPe>[] = [];
  let stopping = false;
  try {
    const result = await client.get('files', `/${FILE}`, path, {
      // Paced to last about ten seconds on any machine: a new PE has time to join between two SIGTERMs.
      limitRate: Math.max(size / 10, 256 * 1024),
      progressIntervalMs: 20,
      onProgress: (p) => {
        if (stopping || stopped.length >= old.length || p.bytes < (size * (stopped.length + 1)) / (old.length + 1)) return;
        const left = old.filter((x) => !stopped.includes(x.identifier));
        const victim = left.find((x) => x.identifier === p.pe?.identifier) ?? left[0]!;
        stopping = true;
        stopped.push(victim.identifier);
        say(`SIGTERM      PE ${hex32(victim.identifier)} at ${mb(p.bytes)}${victim.identifier === p.pe?.identifier ? ', while it serves the download' : ''}`);
        victim.child.proc.kill('SIGTERM');
        // Its replacement starts at once; the next SIGTERM waits for this PE to have left and the
        // new one to serve, so the pool never runs out (a PE starting its threads takes a while).
        const next = replace();
        next.catch(() => {}); // awaited after the download
        joining.push(next);
        const exited = new Promise((resolve) => victim.child.proc.once('exit', resolve));
        exits.push(
          Promise.allSettled([exited, next]).then(() => {
            stopping = false;
          }),
        );
      },
      onFailover: (f) => {
        stalls.push(f.stallMs);
        say(
          `failover     ${peName(f.from)} -> ${peName(f.to)} at block ${f.atBlock}, ${f.cookieEchoed ? 'cookie echoed' : 'NO cookie'}, stall ${Math.round(f.stallMs)} ms`,
        );
      },
    });
    await Promise.all(exits);
    const joined = (await Promise.all(joining)).map((p) => p.identifier);
    return { result, stopped, joined, stalls };
  } finally {
    await client.close();
  }
}

function peName(pe: PeTarget | undefined): string {
  return pe?.identifier !== undefined ? `PE ${hex32(pe.identifier)}` : pe ? `${pe.host}:${pe.port}` : 'no PE';
}

function mb(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** Writes `size` random bytes to `path` (creating its folder) and returns their SHA-256. */
async function generate(path: string, size: number): Promise<string> {
  await mkdir(join(path, '..'), { recursive: true });
  const hash = createHash('sha256');
  const f = await open(path, 'w');
  try {
    const chunk = Buffer.allocUnsafe(1 << 20);
    for (let done = 0; done < size; done += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, size - done));
      randomBytes(part.length).copy(part);
      hash.update(part);
      await f.write(part);
    }
  } finally {
    await f.close();
  }
  return hash.digest('hex');
}
