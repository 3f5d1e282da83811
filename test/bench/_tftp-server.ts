/**
 * The tftp bench's PE process: a plain TFTP server of ours serving ROOT on
 * 127.0.0.1, ephemeral port; with --registrar a PE registered under
 * --handle (the boot storm's pool, tftp-clients' gateway). Run pinned by the
 * bench, compiled:
 *   taskset -c 0 node dist-bench/test/bench/_tftp-server.js ROOT [--registrar URL --handle H --secret S] [--max-per-source N] [--workers N] [--busy-poll auto|on|off]
 * Prints `listening HOST PORT` once bound (and registered), `active N` as its
 * transfer count changes (the bench reads CPU once it is 0); stops on
 * SIGTERM/SIGINT.
 */
import { parseArgs } from 'node:util';
import { createTftpPoolElement, createTftpServer } from '../../lib/tftp/index.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    registrar: { type: 'string' },
    handle: { type: 'string' },
    secret: { type: 'string' },
    'max-per-source': { type: 'string' },
    workers: { type: 'string' },
    'busy-poll': { type: 'string' },
  },
});
const root = positionals[0];
if (!root || (values.registrar !== undefined && (!values.handle || !values.secret))) {
  process.stderr.write('usage: _tftp-server.ts ROOT [--registrar URL --handle H --secret S] [--max-per-source N] [--workers N] [--busy-poll auto|on|off]\n');
  process.exit(2);
}
const init = {
  root,
  host: '127.0.0.1',
  port: 0,
  // A fixed secret alone: the bench does not test cookies, and the default one warns.
  secret: values.secret ?? 'tftp-bench',
  ...(values['max-per-source'] ? { maxHandshakesPerSource: Number(values['max-per-source']) } : {}),
  // Transfers on this many worker threads; none (the library's default): in the main thread.
  ...(values.workers ? { workers: Number(values.workers) } : {}),
  // Polling for ACKs (the library's default: auto).
  ...(values['busy-poll'] ? { busyPoll: values['busy-poll'] as 'auto' | 'on' | 'off' } : {}),
};
const pe = values.registrar ? createTftpPoolElement({ ...init, handle: values.handle!, registrars: [values.registrar] }) : undefined;
const server = pe ? pe.server : createTftpServer(init);
server.on('refused', (err, peer) => process.stderr.write(`refused ${peer.address}:${peer.port}: ${err.message}\n`));
server.on('error', (err) => process.stderr.write(`server error: ${err.message}\n`));
server.on('active', (n) => process.stdout.write(`active ${n}\n`));
pe?.on('error', (err) => process.stderr.write(`pool element error: ${err.message}\n`));
await (pe ?? server).start();
process.stdout.write(`listening ${server.address.address} ${server.address.port}\n`);
const stop = (): void => {
  void (pe ? pe.stop() : server.close()).then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
