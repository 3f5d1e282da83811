/**
 * Pacing a download (`tftp get --limit-rate`, the gateway's `limitRate`):
 * the sink counts as full while the bytes are ahead of the rate, so the
 * receiver holds its ACK back and the PE sends no faster.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import { CliUsageError } from '../../lib/cli/command.js';
import { rate } from '../../lib/cli/options.js';
import { rateFor } from '../../lib/cli/tftp-get.js';
import { createTftpClient } from '../../lib/tftp/client/index.js';
import { RateLimitedSink, type DownloadSink } from '../../lib/tftp/client/sink.js';
import { createTftpServer } from '../../lib/tftp/server/index.js';

class MemorySink implements DownloadSink {
  onDrain: (() => void) | undefined;
  full = false;
  readonly failed = undefined;
  readonly canRewind = false;
  bytes = 0;
  write(_buf: Uint8Array, start: number, end: number): void {
    this.bytes += end - start;
  }
  rewind(): Promise<void> {
    return Promise.resolve();
  }
  finish(): Promise<{ bytes: number }> {
    return Promise.resolve({ bytes: this.bytes });
  }
  abort(): Promise<void> {
    return Promise.resolve();
  }
}

const chunk = new Uint8Array(1000);

describe('RateLimitedSink', () => {
  it('is full while ahead of the rate and drains when the rate has caught up, not before', () => {
    const clock = new ManualClock(0);
    const inner = new MemorySink();
    // 100,000 bytes a second, a bucket of 10,000.
    const sink = new RateLimitedSink(inner, 100_000, clock, 10_000);
    let drains = 0;
    sink.onDrain = () => drains++;
    for (let i = 0; i < 10; i++) sink.write(chunk, 0, 1000);
    expect(sink.full).toBe(false);
    for (let i = 0; i < 5; i++) sink.write(chunk, 0, 1000);
    // 5,000 bytes ahead: 50 ms at the rate.
    expect(sink.full).toBe(true);
    clock.advance(49);
    expect(drains).toBe(0);
    expect(sink.full).toBe(true);
    clock.advance(1);
    expect(drains).toBe(1);
    expect(sink.full).toBe(false);
    expect(sink.bytes).toBe(15_000);
  });

  it('a long pause earns no more than the bucket', () => {
    const clock = new ManualClock(0);
    const sink = new RateLimitedSink(new MemorySink(), 100_000, clock, 10_000);
    clock.advance(60_000);
    for (let i = 0; i < 10; i++) sink.write(chunk, 0, 1000);
    expect(sink.full).toBe(false);
    sink.write(chunk, 0, 1000);
    expect(sink.full).toBe(true);
  });

  it("passes the inner sink's drain on only when the rate allows, and is full while the inner sink is", () => {
    const clock = new ManualClock(0);
    const inner = new MemorySink();
    const sink = new RateLimitedSink(inner, 100_000, clock, 10_000);
    let drains = 0;
    sink.onDrain = () => drains++;
    inner.full = true;
    expect(sink.full).toBe(true);
    inner.full = false;
    inner.onDrain?.();
    expect(drains).toBe(1);
    for (let i = 0; i < 12; i++) sink.write(chunk, 0, 1000);
    inner.onDrain?.();
    expect(drains).toBe(1);
    // The rate catches up while the inner sink is full: no drain until it is not.
    inner.full = true;
    clock.advance(20);
    expect(drains).toBe(1);
    inner.full = false;
    inner.onDrain?.();
    expect(drains).toBe(2);
  });

  it('refuses a rate that is not above 0', () => {
    expect(() => new RateLimitedSink(new MemorySink(), 0, new ManualClock())).toThrow(RangeError);
  });
});

describe('a paced download', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tftp-rate-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('limitRate: 512 KiB at 256 KiB a second takes at least (size - bucket - window) / rate, and arrives whole', async () => {
    const data = randomBytes(512 * 1024);
    writeFileSync(join(dir, 'f.bin'), data);
    const server = createTftpServer({ root: dir, port: 0 });
    await server.start();
    const client = createTftpClient({ cookieInterval: false });
    try {
      const out = join(dir, 'out.bin');
      const r = await client.download({ host: '127.0.0.1', port: server.address.port }, 'f.bin', out, { limitRate: 256 * 1024 });
      expect(r.bytes).toBe(data.length);
      expect(createHash('sha256').update(readFileSync(out)).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
      // The bucket (64 KiB) goes at once, the last window needs no ACK, the rest comes at the rate: a floor whatever the load.
      expect(r.elapsedMs).toBeGreaterThanOrEqual(((data.length - 65_536 - 16 * 1468) / (256 * 1024)) * 1000 - 1);
    } finally {
      await client.close();
      await server.close();
    }
  }, 20_000);
});

describe('--limit-rate', () => {
  it('takes bytes a second with k, M, G counting 1024, as curl', () => {
    expect(rate('limit-rate', '250000')).toBe(250_000);
    expect(rate('limit-rate', '500k')).toBe(512_000);
    expect(rate('limit-rate', '8M')).toBe(8 * 1024 * 1024);
    expect(rate('limit-rate', '1.5G')).toBe(1.5 * 1024 ** 3);
    expect(rate('limit-rate', undefined)).toBeUndefined();
    for (const bad of ['', 'fast', '0', '-1', '8 MB/s', '1T']) expect(() => rate('limit-rate', bad)).toThrow(CliUsageError);
  });

  it('must allow one window a second', () => {
    expect(rateFor({ 'limit-rate': '23488' }, { blksize: 1468, windowsize: 16 })).toBe(23_488);
    expect(() => rateFor({ 'limit-rate': '23487' }, { blksize: 1468, windowsize: 16 })).toThrow(/at least one window a second/);
    expect(rateFor({}, {})).toBeUndefined();
  });
});
