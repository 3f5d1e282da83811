/** The client's file sink: whole chunks written synchronously while that is fast, through the thread pool after a slow write. */
import { createHash, randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileSink } from '../../lib/tftp/client/sink.js';

const CHUNK = 1 << 16;
const dir = mkdtempSync(join(tmpdir(), 'tftp-client-sink-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Waits (event loop turns, with a deadline) until `ok` holds. */
async function until(ok: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

describe('file sink', () => {
  it('after one slow write sends 64 chunks through the thread pool, then writes synchronously again', async () => {
    const path = join(dir, 'out.bin');
    // A clock that takes 10 ms per reading while `slow`: the write it times looks slow.
    let t = 0;
    let slow = true;
    const sink = await FileSink.open(path, { sha256: true, now: () => (slow ? (t += 10) : t) });
    const data = randomFillSync(Buffer.alloc(CHUNK * 130));
    let at = 0;
    const chunks = (n: number): void => {
      for (let i = 0; i < n; i++, at += CHUNK) sink.write(data, at, at + CHUNK);
    };
    chunks(1);
    expect(statSync(path).size).toBe(CHUNK);
    slow = false;
    // The next 64 go through the thread pool: all in flight before the event loop turns, so the sink is full.
    chunks(64);
    expect(sink.full).toBe(true);
    expect(sink.inFlight).toBe(64);
    await until(() => sink.inFlight === 0, 'the thread pool wrote the 64 chunks');
    expect(statSync(path).size).toBe(65 * CHUNK);
    // Synchronous again: 64 more leave nothing in flight.
    chunks(64);
    expect(sink.full).toBe(false);
    expect(statSync(path).size).toBe(129 * CHUNK);
    chunks(1);
    const r = await sink.finish();
    expect(r.bytes).toBe(data.length);
    expect(r.sha256).toBe(createHash('sha256').update(data).digest('hex'));
    expect(readFileSync(path).equals(data)).toBe(true);
  });

  it('writes a large block that comes between chunks as it is, and the rest through chunks, in order', async () => {
    const path = join(dir, 'direct.bin');
    const sink = await FileSink.open(path, { sha256: true });
    const data = randomFillSync(Buffer.alloc(3 * 65_464 + 1_000));
    // A large block with no chunk being filled: on the file at once, not copied into a chunk.
    sink.write(data, 0, 65_464);
    expect(statSync(path).size).toBe(65_464);
    // A small one starts a chunk; the large one after it goes into that chunk.
    sink.write(data, 65_464, 66_464);
    sink.write(data, 66_464, 131_928);
    expect(statSync(path).size).toBe(65_464 + CHUNK);
    sink.write(data, 131_928, data.length);
    const r = await sink.finish();
    expect(r.bytes).toBe(data.length);
    expect(r.sha256).toBe(createHash('sha256').update(data).digest('hex'));
    expect(readFileSync(path).equals(data)).toBe(true);
  });
});
