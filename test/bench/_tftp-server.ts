/**
 * The tftp bench's PE process: a plain TFTP server of ours (no registrar)
 * serving ROOT on 127.0.0.1, ephemeral port. Run pinned by the bench, compiled:
 *   taskset -c 0 node dist-bench/test/bench/_tftp-server.js ROOT
 * Prints `listening HOST PORT` once bound; stops on SIGTERM/SIGINT.
 */
import { createTftpServer } from '../../lib/tftp/server.js';

const root = process.argv[2];
if (!root) {
  process.stderr.write('usage: _tftp-server.ts ROOT\n');
  process.exit(2);
}
// A fixed secret: the bench does not test cookies, and the default one warns.
const server = createTftpServer({ root, host: '127.0.0.1', port: 0, secret: 'tftp-bench' });
server.on('refused', (err, peer) => process.stderr.write(`refused ${peer.address}:${peer.port}: ${err.message}\n`));
server.on('error', (err) => process.stderr.write(`server error: ${err.message}\n`));
await server.start();
process.stdout.write(`listening ${server.address.address} ${server.address.port}\n`);
const stop = (): void => {
  void server.close().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
