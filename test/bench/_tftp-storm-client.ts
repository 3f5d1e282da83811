/**
 * The boot storm's client process: N downloads at once by our client, each
 * with a client (and sockets) of its own, from one PE or from a pool picked
 * by policy. Run pinned by the bench, compiled:
 *   taskset -c 1 node dist-bench/test/bench/_tftp-storm-client.js N OUTDIR PATH BLKSIZE WINDOWSIZE DEADLINE_MS TARGET
 * TARGET: HOST:PORT (one PE) or REGISTRAR_URL#HANDLE (the pool). Prints a
 * JSON line per client as it ends {i, ms, pe} or {i, ms, error} (ms from the
 * common start), then {cpu}: user+sys seconds of the storm, without Node's
 * start-up.
 */
import { join } from 'node:path';
import { createTftpClient, type TftpClient } from '../../lib/tftp/index.js';

const [n, outDir, path, blksize, windowsize, deadlineMs, target] = process.argv.slice(2);
if (!n || !outDir || !path || !blksize || !windowsize || !deadlineMs || !target) {
  process.stderr.write('usage: _tftp-storm-client.ts N OUTDIR PATH BLKSIZE WINDOWSIZE DEADLINE_MS HOST:PORT|REGISTRAR#HANDLE\n');
  process.exit(2);
}
const hash = target.indexOf('#');
const pool = hash >= 0 ? { registrar: target.slice(0, hash), handle: target.slice(hash + 1) } : undefined;
const [host, port] = pool ? ['', 0] : [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
const say = (o: object): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
// sha256 off: the bench hashes the files itself.
const clients: TftpClient[] = Array.from({ length: Number(n) }, () =>
  createTftpClient({ blksize: Number(blksize), windowsize: Number(windowsize), sha256: false, ...(pool ? { registrars: [pool.registrar] } : {}) }),
);
// Without a registrar connection nothing else holds the process open (the client's sockets are unref'd).
const keepAlive = setInterval(() => {}, 1 << 30);
const signal = AbortSignal.timeout(Number(deadlineMs));
const cpu0 = process.cpuUsage();
const start = performance.now();
await Promise.all(
  clients.map(async (client, i) => {
    const out = join(outDir, `storm-${i}.bin`);
    try {
      const r = pool ? await client.get(pool.handle, path, out, { signal }) : await client.download({ host, port }, path, out, { signal });
      const pe = r.servedBy.map((s) => `${s.pe.host}:${s.pe.port}`);
      say({ i, ms: performance.now() - start, pe: [...new Set(pe)].join(' ') });
    } catch (err) {
      say({ i, ms: performance.now() - start, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
    }
  }),
);
const cpu = process.cpuUsage(cpu0);
say({ cpu: (cpu.user + cpu.system) / 1e6 });
clearInterval(keepAlive);
await Promise.all(clients.map((c) => c.close()));
