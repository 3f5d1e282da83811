/**
 * The tftp bench's client process: our client downloading one file from one
 * given PE address (no registrar), with cookies asked for as `rserpool tftp
 * get` does. Run pinned by the bench, compiled:
 *   taskset -c 1 node dist-bench/test/bench/_tftp-client.js HOST PORT PATH OUT BLKSIZE WINDOWSIZE
 * Prints one JSON line {bytes, ms, cpu, blksize, windowsize}: ms is the
 * client's own timing of the transfer and cpu its user+sys seconds
 * meanwhile, both without Node's start-up (hundreds of ms, which would swamp
 * a 0.3 s download).
 */
import { createTftpClient } from '../../lib/tftp/index.js';

const [host, port, path, out, blksize, windowsize] = process.argv.slice(2);
if (!host || !port || !path || !out || !blksize || !windowsize) {
  process.stderr.write('usage: _tftp-client.ts HOST PORT PATH OUT BLKSIZE WINDOWSIZE\n');
  process.exit(2);
}
// sha256 off: the bench hashes the file itself, and atftp does not hash either.
const client = createTftpClient({ blksize: Number(blksize), windowsize: Number(windowsize), sha256: false });
// The client's sockets and timers are unref'd: without a registrar connection nothing else holds the process open.
const keepAlive = setInterval(() => {}, 1 << 30);
try {
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const r = await client.download({ host, port: Number(port) }, path, out);
  const ms = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  const line = { bytes: r.bytes, ms, cpu: (cpu.user + cpu.system) / 1e6, blksize: r.blksize, windowsize: r.windowsize };
  process.stdout.write(`${JSON.stringify(line)}\n`);
} catch (err) {
  process.stderr.write(`${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}\n`);
  process.exitCode = 1;
} finally {
  clearInterval(keepAlive);
  await client.close();
}
