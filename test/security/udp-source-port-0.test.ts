import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { listenAnnounces, type AnnounceListener } from '../../lib/announce/index.js';
import { MulticastChannel } from '../../lib/enrp/multicast.js';
import { silentLogger } from '../../lib/logger.js';
import { encodeAsapMessage } from '../../protocols/asap/codec.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { TransportUse } from '../../protocols/parameters/types.js';
import { withDeadline } from '../transport/util.js';

/** One UDP datagram to 127.0.0.1:port whose source port is 0, written as a raw IP packet (we run as root). */
function sendFromPort0(port: number, payload: Uint8Array): void {
  const py = `
import socket, struct, sys
data = bytes.fromhex(sys.argv[2]); port = int(sys.argv[1])
udp = struct.pack('!HHHH', 0, port, 8 + len(data), 0) + data
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, socket.inet_aton('127.0.0.1'), socket.inet_aton('127.0.0.1'))
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.sendto(ip + udp, ('127.0.0.1', 0))
`;
  execFileSync('python3', ['-c', py, String(port), Buffer.from(payload).toString('hex')]);
}

async function sendNormally(port: number, payload: Uint8Array): Promise<void> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve, reject) => s.send(payload, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
  s.close();
}

const announce = (serverId: number): Uint8Array =>
  encodeAsapMessage({
    type: AsapMessageType.ServerAnnounce,
    serverId,
    transports: [{ protocol: 'tcp', port: 3863, addresses: ['0.0.0.0'], transportUse: TransportUse.DataPlusControl }],
  });

let listener: AnnounceListener | undefined;
let channel: MulticastChannel | undefined;
afterEach(async () => {
  await listener?.close();
  await channel?.stop();
  listener = undefined;
  channel = undefined;
});

describe('UDP datagrams from source port 0 are dropped', () => {
  it('announce listener: a server announce from port 0 is not taken; one from a real port is', async () => {
    listener = await listenAnnounces({ port: 0 });
    const heard: number[] = [];
    const legit = new Promise<void>((resolve) => listener!.on('announce', (a) => (heard.push(a.serverId), a.serverId === 2 && resolve())));
    sendFromPort0(listener.port, announce(1));
    await sendNormally(listener.port, announce(2));
    await withDeadline(legit, 5_000, 'the legitimate announce');
    expect(heard).toEqual([2]);
  });

  it('ENRP multicast channel: a presence from port 0 is not handed on', async () => {
    const probe = createSocket('udp4');
    await new Promise<void>((r) => probe.bind(0, '127.0.0.1', r));
    const port = probe.address().port;
    probe.close();
    channel = new MulticastChannel({ port, group: '239.0.0.51' }, silentLogger);
    const got: number[] = [];
    let legit!: () => void;
    const arrived = new Promise<void>((r) => (legit = r));
    await channel.start((bytes) => {
      got.push(bytes[0]!);
      if (bytes[0] === 2) legit();
    });
    sendFromPort0(port, new Uint8Array([1, 0, 0, 4]));
    await sendNormally(port, new Uint8Array([2, 0, 0, 4]));
    await withDeadline(arrived, 5_000, 'the legitimate datagram');
    expect(got).toEqual([2]);
  });
});
