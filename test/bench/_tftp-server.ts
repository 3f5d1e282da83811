/**
 * The tftp bench's PE process: a plain TFTP server of ours serving ROOT on
 * 127.0.0.1, ephemeral port; with REGISTRAR HANDLE SECRET a PE registered
 * under HANDLE (the boot storm's pool). Run pinned by the bench, compiled:
 *   taskset -c 0 node dist-bench/test/bench/_tftp-server.js ROOT [REGISTRAR HANDLE SECRET]
 * Prints `listening HOST PORT` once bound (and registered), `active N` as its
 * transfer count changes (the bench reads CPU once it is 0); stops on
 * SIGTERM/SIGINT.
 */
import { createTftpPoolElement, createTftpServer } from '../../lib/tftp/index.js';

const [root, registrar, handle, poolSecret] = process.argv.slice(2);
if (!root || (registrar !== undefined && (!handle || !poolSecret))) {
  process.stderr.write('usage: _tftp-server.ts ROOT [REGISTRAR HANDLE SECRET]\n');
  process.exit(2);
}
// A fixed secret alone: the bench does not test cookies, and the default one warns.
const init = { root, host: '127.0.0.1', port: 0, secret: poolSecret ?? 'tftp-bench' };
const pe = registrar ? createTftpPoolElement({ ...init, handle: handle!, registrars: [registrar] }) : undefined;
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
