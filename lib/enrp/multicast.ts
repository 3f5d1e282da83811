/**
 * Presence over UDP multicast (RFC 5353 section 3.1): announces us to
 * registrars we were not told about. Loopback only by default (interface
 * 127.0.0.1, TTL 1), so it never leaves the host.
 */
import { createSocket, type Socket } from 'node:dgram';
import type { Logger } from '../logger.js';
import type { EnrpMulticastInit } from './types.js';

export const DEFAULT_ENRP_MULTICAST = { group: '239.0.0.51', port: 9901, interface: '127.0.0.1', ttl: 1 } as const;

export class MulticastChannel {
  readonly #init: Required<EnrpMulticastInit>;
  readonly #log: Logger;
  #socket: Socket | undefined;

  constructor(init: EnrpMulticastInit, log: Logger) {
    this.#init = { ...DEFAULT_ENRP_MULTICAST, ...init };
    this.#log = log;
  }

  async start(onMessage: (bytes: Uint8Array, from: string) => void): Promise<void> {
    const { group, port, interface: iface, ttl } = this.#init;
    const s = createSocket({ type: 'udp4', reuseAddr: true });
    s.on('error', (err) => this.#log.warn({ err }, 'ENRP multicast socket error'));
    s.on('message', (msg, rinfo) => {
      // Port 0 is no sender's port: a forged source, dropped.
      if (rinfo.port === 0) return;
      onMessage(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength), rinfo.address);
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(port, () => {
        s.off('error', reject);
        resolve();
      });
    });
    s.addMembership(group, iface);
    s.setMulticastInterface(iface);
    s.setMulticastTTL(ttl);
    s.setMulticastLoopback(true);
    s.unref();
    this.#socket = s;
  }

  send(bytes: Uint8Array): void {
    const s = this.#socket;
    if (s === undefined) return;
    s.send(bytes, this.#init.port, this.#init.group, (err) => {
      if (err) this.#log.debug({ err }, 'ENRP multicast send failed');
    });
  }

  async stop(): Promise<void> {
    const s = this.#socket;
    this.#socket = undefined;
    if (s === undefined) return;
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
