import { decodeAsapMessage, encodeAsapMessage, type AsapMessage } from './protocols/asap/index.js';
import { poolHandleFromString } from './protocols/parameters/index.js';
const m: AsapMessage = { type: 1, handle: poolHandleFromString('EchoPool'), element: { identifier: 0x12345678, homeRegistrarId: 0, registrationLife: 30000, userTransport: { protocol: 'tcp', port: 8000, addresses: ['127.0.0.1'], transportUse: 0 }, policy: { type: 1 }, asapTransport: { protocol: 'tcp', port: 50000, addresses: ['127.0.0.1'], transportUse: 0 } } };
const b = encodeAsapMessage(m);
let x = 0;
for (let round = 0; round < 3; round++) {
  const n = 500_000;
  let t = performance.now();
  for (let i = 0; i < n; i++) x += decodeAsapMessage(b).type;
  console.log(`dec only ${Math.round(n / ((performance.now() - t) / 1000))}/s`);
}
