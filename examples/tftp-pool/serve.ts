/**
 * A TFTP pool element from the library: serves a directory by TFTP and keeps
 * it registered under a pool handle, with its load (active transfers) as the
 * policy value. Same as `rserpool tftp serve`, in a dozen lines.
 *
 *   node --import tsx examples/tftp-pool/serve.ts DIR [REGISTRAR_URL]
 *
 * Prints `HOST:PORT PE-ID` once registered; Ctrl-C deregisters and stops.
 */
import { createLogger } from '../../lib/logger.js';
import { createTftpPoolElement } from '../../lib/tftp/index.js';

const [root, registrar = 'tcp://127.0.0.1:3863'] = process.argv.slice(2);
if (!root) {
  process.stderr.write('usage: serve.ts DIR [REGISTRAR_URL]\n');
  process.exit(2);
}

const pe = createTftpPoolElement(
  {
    root,
    handle: 'files',
    registrars: [registrar],
    host: '127.0.0.1',
    port: 0, // any free UDP port: the registrar tells the clients which
    secret: process.env.TFTP_POOL_SECRET ?? 'the same on every PE of the pool',
  },
  { logger: createLogger('tftp-pool-example') },
);
await pe.start();
process.stdout.write(`${pe.address.address}:${pe.address.port} 0x${pe.identifier.toString(16).padStart(8, '0')}\n`);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void pe.stop().then(() => process.exit(0)));
