/**
 * The tftp bench's client process: our client downloading one file from one
 * given PE address (no registrar), with cookies asked for as `rserpool tftp
 * get` does. Run pinned by the bench, compiled:
 *   taskset -c 1 node dist-bench/test/bench/_tftp-client.js HOST PORT PATH OUT BLKSIZE WINDOWSIZE
 * Prints one JSON line {bytes, ms, blksize, windowsize}: ms is the client's own
 * timing of the transfer, without Node's start-up (hundreds of ms, which would
 * swamp a 0.3 s download).
 */
import { createTftpClient } from '../../lib/tftp/client.js';

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
  const start = performance.now();
  const r = await client.download({ host, port: Number(port) }, path, out);
  const ms = performance.now() - start;
  process.stdout.write(`${JSON.stringify({ bytes: r.bytes, ms, blksize: r.blksize, windowsize: r.windowsize })}\n`);
} catch (err) {
  process.stderr.write(`${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}\n`);
  process.exitCode = 1;
} finally {
  clearInterval(keepAlive);
  await client.close();
}
