/**
 * A pool user from the library: downloads a file from the pool "files",
 * failing over to another PE (with the last state cookie) if the one serving
 * it dies. Same as `rserpool tftp get`, with the events printed.
 *
 *   node --import tsx examples/tftp-pool/download.ts /PATH OUT [REGISTRAR_URL]
 */
import { createTftpClient } from '../../lib/tftp/index.js';

const [path, out, registrar = 'tcp://127.0.0.1:3863'] = process.argv.slice(2);
if (!path || !out) {
  process.stderr.write('usage: download.ts /PATH OUT [REGISTRAR_URL]\n');
  process.exit(2);
}

const client = createTftpClient({ registrars: [registrar] });
try {
  const r = await client.get('files', path, out, {
    onNegotiated: (n) => console.log(`from PE 0x${n.pe.identifier?.toString(16)}: blksize ${n.blksize}, windowsize ${n.windowsize}`),
    onFailover: (f) => console.log(`failover to PE 0x${f.to.identifier?.toString(16)} at block ${f.atBlock}, stall ${Math.round(f.stallMs)} ms`),
  });
  console.log(`${r.bytes} bytes, ${r.mbPerSec.toFixed(1)} MB/s, ${r.failovers} failover(s), sha256 ${r.sha256}`);
} finally {
  await client.close();
}
