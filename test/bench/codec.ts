/**
 * suite codec: encode+decode round trips on one core.
 * Baseline in the same run: JSON.stringify+parse of the same message, the
 * obvious alternative a user might reach for.
 */
import { AsapMessageType, PolicyType, decodeAsapMessage, encodeAsapMessage, type AsapMessage, type PoolElementParameter } from '../../protocols/index.js';
import { opsPerSecond, type BenchContext } from './context.js';

const handle = new TextEncoder().encode('EchoPool');

function element(id: number): PoolElementParameter {
  return {
    identifier: id,
    homeRegistrarId: 0x11111111,
    registrationLife: 30_000,
    userTransport: { protocol: 'tcp', port: 8000 + (id % 1000), addresses: [`10.0.${(id >> 8) & 255}.${id & 255}`], transportUse: 0 },
    policy: { type: PolicyType.LeastUsed, load: (id * 1000) >>> 0 },
    asapTransport: { protocol: 'tcp', port: 50_000, addresses: ['127.0.0.1'], transportUse: 0 },
  };
}

export async function run(ctx: BenchContext): Promise<void> {
  const ms = ctx.quick ? 500 : 3000;
  const registration: AsapMessage = { type: AsapMessageType.Registration, handle, element: element(0x12345678) };
  const response: AsapMessage = {
    type: AsapMessageType.HandleResolutionResponse,
    handle,
    policy: { type: PolicyType.LeastUsed, load: 0 },
    elements: Array.from({ length: 128 }, (_, i) => element(i + 1)),
  };

  for (const [name, msg] of [
    ['registration-roundtrip', registration],
    ['hres-response-128-roundtrip', response],
  ] as const) {
    const bytes = encodeAsapMessage(msg);
    // Sanity: what we time must round-trip.
    if (encodeAsapMessage(decodeAsapMessage(bytes)).length !== bytes.length) throw new Error(`${name}: round trip changed the size`);
    const rate = opsPerSecond(() => decodeAsapMessage(encodeAsapMessage(msg)), ms, name.startsWith('hres') ? 10 : 1000);
    ctx.report({ name, value: rate, unit: 'msg/s', bytes: bytes.length, impl: 'rserpool' });
    const json = JSON.stringify(msg, (_k, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v));
    const base = opsPerSecond(() => JSON.parse(JSON.stringify(JSON.parse(json))), ms, name.startsWith('hres') ? 10 : 1000);
    ctx.report({ name, value: base, unit: 'msg/s', bytes: json.length, impl: 'json-baseline' });
    ctx.log(`${name}: ${(rate / base).toFixed(2)}x the JSON baseline`);
  }
}
