/** The TFTP pool element with a real registrar on 127.0.0.1 (tcp, port 0): registration, load reports, cookies without a configured secret, deregistration. */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import { createRegistrar, type Registrar } from '../../lib/registrar/index.js';
import { createPoolUser } from '../../lib/pool-user/index.js';
import { createTftpPoolElement, type TftpPoolElement, type TftpPoolElementInit } from '../../lib/tftp/server/index.js';
import { COOKIE_OPTION } from '../../lib/tftp/contract.js';
import { encodeAsapMessage } from '../../protocols/asap/codec.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { LOAD_MAX, PolicyType } from '../../protocols/parameters/types.js';
import { TftpOpcode } from '../../protocols/tftp/types.js';
import { waitFor } from '../transport/util.js';
import { RawPeer, cookieOf, download, tempDir } from './server-helpers.js';

let root: string;
let removeRoot: () => Promise<void>;
let registrar: Registrar;
let url: string;
const content = randomBytes(200_000);

beforeAll(async () => {
  const d = await tempDir('rserpool-tftp-pe-');
  root = d.path;
  removeRoot = d.remove;
  await writeFile(join(root, 'file.bin'), content);
  registrar = createRegistrar({ asap: ['tcp://127.0.0.1:0'], announce: false });
  await registrar.start();
  url = registrar.addresses[0]!.href;
});
afterAll(async () => {
  await registrar.stop();
  await removeRoot();
});

/** Transfers in this thread, and on two worker threads. */
const MODES = [0, 2];

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startPe(init: Partial<TftpPoolElementInit> = {}, clock?: ManualClock): Promise<TftpPoolElement> {
  const pe = createTftpPoolElement({ root, handle: 'tftp-pe-test', registrars: [url], port: 0, loadUpdateMs: 0, ...init }, clock ? { clock } : {});
  await pe.start();
  cleanups.push(() => pe.stop());
  return pe;
}

async function peer(): Promise<RawPeer> {
  const p = await RawPeer.open();
  cleanups.push(() => p.close());
  return p;
}

function resolver() {
  const pu = createPoolUser({ registrars: [url], cacheTtlMs: 0 });
  cleanups.push(() => pu.close());
  return pu;
}

describe('TFTP pool element', () => {
  it.each(MODES)('registers its UDP address under the handle with least-used load 0, and deregisters on stop (workers: %i)', async (workers) => {
    const pe = await startPe({ workers, identifier: 0x7f001 });
    const pu = resolver();
    const [e, ...rest] = await pu.resolve('tftp-pe-test');
    expect(rest).toEqual([]);
    expect(e).toMatchObject({
      identifier: 0x7f001,
      userTransport: { protocol: 'udp', port: pe.address.port, addresses: ['127.0.0.1'] },
      policy: { type: PolicyType.LeastUsed, load: 0 },
    });
    expect((await download(await peer(), e!.userTransport.port, 'file.bin')).data.equals(content)).toBe(true);
    await pe.stop();
    await expect(pu.resolve('tftp-pe-test')).rejects.toMatchObject({ code: 'RSP_ERR_UNKNOWN_POOL_HANDLE' });
  });

  it.each(MODES)('reports its load (active transfers / maxTransfers) as they start and end (workers: %i)', async (workers) => {
    const pe = await startPe({ workers, maxTransfers: 4 });
    const pu = resolver();
    const p = await peer();
    const loaded = waitFor(pe, 'load', { timeoutMs: 10_000 });
    p.sendPacket({ opcode: TftpOpcode.Rrq, filename: 'file.bin', mode: 'octet', options: [] }, pe.address.port);
    const first = await p.nextTftp();
    expect(await loaded).toEqual([1, Math.round(LOAD_MAX / 4)]);
    expect((await pu.resolve('tftp-pe-test'))[0]!.policy).toEqual({ type: PolicyType.LeastUsed, load: Math.round(LOAD_MAX / 4) });
    const idle = waitFor(pe, 'load', { timeoutMs: 10_000 });
    p.sendPacket({ opcode: TftpOpcode.Error, code: 0, message: 'done here' }, first.port);
    expect(await idle).toEqual([0, 0]);
    expect((await pu.resolve('tftp-pe-test'))[0]!.policy).toEqual({ type: PolicyType.LeastUsed, load: 0 });
  });

  it('reports load changes at most once per loadUpdateMs, the latest value last', async () => {
    const clock = new ManualClock();
    const pe = await startPe({ loadUpdateMs: 1000, maxTransfers: 10 }, clock);
    const loads: number[] = [];
    pe.on('load', (active) => loads.push(active));
    const a = await peer();
    const b = await peer();
    const firstReport = waitFor(pe, 'load', { timeoutMs: 10_000 });
    a.sendPacket({ opcode: TftpOpcode.Rrq, filename: 'file.bin', mode: 'octet', options: [] }, pe.address.port);
    await a.nextTftp();
    await firstReport;
    b.sendPacket({ opcode: TftpOpcode.Rrq, filename: 'file.bin', mode: 'octet', options: [] }, pe.address.port);
    await b.nextTftp();
    expect(pe.activeTransfers).toBe(2);
    expect(loads).toEqual([1]);
    const second = waitFor(pe, 'load', { timeoutMs: 10_000 });
    clock.advance(1000);
    await second;
    expect(loads).toEqual([1, 2]);
  });

  it.each(MODES)('a PE with no secret makes a random one: its own cookies resume there, another PE of the pool refuses them (workers: %i)', async (workers) => {
    const a = await startPe({ workers });
    const b = await startPe({ workers });
    const r = await download(await peer(), a.address.port, 'file.bin', [[COOKIE_OPTION, '10']]);
    expect(r.cookies.length).toBeGreaterThan(2);
    const cookie = r.cookies[2]!;
    const p = await peer();
    p.send(encodeAsapMessage({ type: AsapMessageType.CookieEcho, cookie }), a.address.port);
    const reopened = await p.nextTftp(10_000, (x) => void cookieOf(x));
    expect(reopened.packet.opcode).toBe(TftpOpcode.Oack);
    p.ack(0, reopened.port);
    expect((await p.nextTftp(10_000, (x) => void cookieOf(x))).packet).toMatchObject({ opcode: TftpOpcode.Data, block: 21 });
    const q = await peer();
    q.send(encodeAsapMessage({ type: AsapMessageType.CookieEcho, cookie }), b.address.port);
    expect((await q.nextTftp()).packet).toMatchObject({ opcode: TftpOpcode.Error, message: expect.stringMatching(/^cookie refused: bad-signature/) });
  });
});
