import { describe, expect, it } from 'vitest';
import { AsapMessageType, decodeAsapMessage, encodeAsapMessage } from '../../protocols/asap/index.js';
import { EnrpMessageType, decodeEnrpMessage, encodeEnrpMessage } from '../../protocols/enrp/index.js';
import { PolicyType, poolHandleFromString } from '../../protocols/parameters/index.js';
import { vector as load, type VectorName } from '../vectors/index.js';
import { toHex } from './hex.js';

const vector = (name: VectorName): Uint8Array => load(name).bytes;

describe('reference vectors', () => {
  it('asap-registration.hex decodes to the stated registration and re-encodes identically', () => {
    const bytes = vector('asap-registration');
    expect(bytes.length).toBe(72);
    const m = decodeAsapMessage(bytes);
    expect(m).toEqual({
      type: AsapMessageType.Registration,
      handle: poolHandleFromString('EchoPool'),
      element: {
        identifier: 0x12345678,
        homeRegistrarId: 0,
        registrationLife: 30000,
        userTransport: { protocol: 'tcp', port: 8000, addresses: ['127.0.0.1'], transportUse: 0 },
        policy: { type: PolicyType.RoundRobin },
        asapTransport: { protocol: 'tcp', port: 50000, addresses: ['127.0.0.1'], transportUse: 0 },
      },
    });
    expect(toHex(encodeAsapMessage(m))).toBe(toHex(bytes));
  });

  it('asap-handle-resolution.hex decodes to a resolution of "ScriptingPool" and re-encodes identically', () => {
    const bytes = vector('asap-handle-resolution');
    expect(bytes.length).toBe(24);
    const m = decodeAsapMessage(bytes);
    expect(m).toEqual({ type: AsapMessageType.HandleResolution, handle: poolHandleFromString('ScriptingPool') });
    expect(toHex(encodeAsapMessage(m))).toBe(toHex(bytes));
  });

  it('enrp-presence.hex decodes to the stated presence and re-encodes identically', () => {
    const bytes = vector('enrp-presence');
    expect(bytes.length).toBe(44);
    const m = decodeEnrpMessage(bytes);
    expect(m).toEqual({
      type: EnrpMessageType.Presence,
      senderServerId: 0x11111111,
      receiverServerId: 0,
      checksum: 0x1234,
      server: { registrarId: 0x11111111, transport: { protocol: 'tcp', port: 9901, addresses: ['127.0.0.1'], transportUse: 0 } },
    });
    expect(toHex(encodeEnrpMessage(m))).toBe(toHex(bytes));
  });
});
