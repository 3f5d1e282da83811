/** Datagrams a normal socket cannot send: from source port 0 (a raw socket, so root only). */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Raw sockets need root (or CAP_NET_RAW); tests that need one say so when skipped. */
export const canSendRaw = process.platform === 'linux' && process.getuid?.() === 0;

// The kernel adds the IP header (source address by the route); the UDP header is ours, checksum 0 (none, IPv4).
const SCRIPT = `
import socket, struct, sys
host, port, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
for hexed in sys.argv[4:]:
    payload = bytes.fromhex(hexed)
    s.sendto(struct.pack('!HHHH', sport, port, 8 + len(payload), 0) + payload, (host, 0))
`;

/** Sends each payload as one UDP datagram to host:port from source port `sourcePort` (default 0). */
export async function sendRawUdp(host: string, port: number, payloads: Uint8Array[], sourcePort = 0): Promise<void> {
  await run('python3', ['-c', SCRIPT, host, String(port), String(sourcePort), ...payloads.map((p) => Buffer.from(p).toString('hex'))], { timeout: 10_000 });
}
