/**
 * The tftp bench's client process: our client downloading from one given PE
 * address (no registrar), with cookies asked for as `rserpool tftp get`
 * does. Run pinned by the bench, compiled:
 *   taskset -c 1 node dist-bench/test/bench/_tftp-client.js HOST PORT PATH OUT BLKSIZE WINDOWSIZE
 * Prints one JSON line {bytes, ms, cpu, blksize, windowsize}: ms is the
 * client's own timing of the transfer and cpu its user+sys seconds
 * meanwhile, both without Node's start-up (hundreds of ms, which would swamp
 * a 0.3 s download).
 *   ... _tftp-client.js --serve BLKSIZE WINDOWSIZE
 * One long-lived client, as a program that imports the library keeps it:
 * each stdin line `HOST PORT PATH OUT` is one download, answered with such a
 * JSON line (or {"error": ...}).
 */
import { createInterface } from 'node:readline';
import { createTftpClient } from '../../lib/tftp/index.js';

interface Line {
  bytes: number;
  ms: number;
  cpu: number;
  blksize: number;
  windowsize: number;
}

const args = process.argv.slice(2);
const serve = args[0] === '--serve';
const [blksize, windowsize] = serve ? args.slice(1) : args.slice(4);
if (!blksize || !windowsize || (!serve && args.length < 6)) {
  process.stderr.write('usage: _tftp-client.ts HOST PORT PATH OUT BLKSIZE WINDOWSIZE | --serve BLKSIZE WINDOWSIZE\n');
  process.exit(2);
}
// sha256 off: the bench hashes the file itself, and atftp does not hash either.
const client = createTftpClient({ blksize: Number(blksize), windowsize: Number(windowsize), sha256: false });

async function one(host: string, port: string, path: string, out: string): Promise<Line> {
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const r = await client.download({ host, port: Number(port) }, path, out);
  const ms = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  return { bytes: r.bytes, ms, cpu: (cpu.user + cpu.system) / 1e6, blksize: r.blksize, windowsize: r.windowsize };
}

const said = (err: unknown): string => (err instanceof Error ? `${err.name}: ${err.message}` : String(err));

// The client's sockets and timers are unref'd: without a registrar connection nothing else holds the process open.
const keepAlive = setInterval(() => {}, 1 << 30);
try {
  if (serve) {
    for await (const req of createInterface({ input: process.stdin })) {
      const [host, port, path, out] = req.trim().split(' ');
      let line: Line | { error: string };
      try {
        line = await one(host!, port!, path!, out!);
      } catch (err) {
        line = { error: said(err) };
      }
      process.stdout.write(`${JSON.stringify(line)}\n`);
    }
  } else {
    const [host, port, path, out] = args;
    process.stdout.write(`${JSON.stringify(await one(host!, port!, path!, out!))}\n`);
  }
} catch (err) {
  process.stderr.write(`${said(err)}\n`);
  process.exitCode = 1;
} finally {
  clearInterval(keepAlive);
  await client.close();
}
