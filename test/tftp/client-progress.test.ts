import { describe, expect, it } from 'vitest';
import { CliUsageError } from '../../lib/cli/command.js';
import { failoverLine, parseRemote } from '../../lib/cli/tftp-get.js';
import type { TransferProgress } from '../../lib/tftp/client/index.js';
import { ProgressReporter, formatBytes, formatDuration, progressText } from '../../lib/cli/progress.js';

class Out {
  text = '';
  constructor(
    readonly isTTY: boolean,
    readonly columns = 100,
  ) {}
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

const at = (elapsedMs: number, bytes: number, extra: Partial<TransferProgress> = {}): TransferProgress => ({
  bytes,
  total: 100 * 2 ** 20,
  bytesPerSecond: 50e6,
  etaMs: 2_000,
  pe: { identifier: 0xa001, host: '127.0.0.1', port: 6969 },
  failovers: 0,
  elapsedMs,
  ...extra,
});

describe('progress output', () => {
  it('formats sizes, rates and times', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(100 * 2 ** 20)).toBe('100 MiB');
    expect(formatDuration(61_000)).toBe('1:01');
    expect(formatDuration(3_725_000)).toBe('1:02:05');
    expect(progressText(at(0, 25 * 2 ** 20))).toBe('25.0 MiB of 100 MiB (25%)  50.0 MB/s  ETA 0:02  PE 0x0000a001');
    expect(progressText(at(0, 10, { total: undefined, etaMs: undefined, pe: undefined }))).toBe('10 B  50.0 MB/s  finding a PE');
  });

  it('writes plain lines at most once per interval when the output is not a terminal', () => {
    const out = new Out(false);
    const r = new ProgressReporter(out, { label: 'f.bin', lineEveryMs: 1_000 });
    r.update(at(0, 0));
    r.update(at(400, 10 * 2 ** 20));
    r.update(at(1_000, 20 * 2 ** 20));
    r.line('failover: PE 0x0000a001 -> 0x0000a002 at block 5, stall 612 ms');
    r.update(at(1_500, 30 * 2 ** 20));
    r.end();
    expect(out.text.split('\n')).toEqual([
      'progress: 0 B of 100 MiB (0%)  50.0 MB/s  ETA 0:02  PE 0x0000a001',
      'progress: 20.0 MiB of 100 MiB (20%)  50.0 MB/s  ETA 0:02  PE 0x0000a001',
      'failover: PE 0x0000a001 -> 0x0000a002 at block 5, stall 612 ms',
      '',
    ]);
  });

  it('redraws a bar in place on a terminal and clears it for a line of its own', () => {
    const out = new Out(true, 120);
    const r = new ProgressReporter(out, { label: 'f.bin' });
    r.update(at(0, 50 * 2 ** 20));
    expect(out.text.startsWith('\rf.bin [' + '#'.repeat(20) + '.'.repeat(20) + '] 50.0 MiB of 100 MiB (50%)')).toBe(true);
    expect(out.text.endsWith('PE 0x0000a001\x1b[K')).toBe(true);
    out.text = '';
    r.line('failover: x');
    expect(out.text).toBe('\r\x1b[Kfailover: x\n');
    out.text = '';
    r.update(at(10, 100 * 2 ** 20));
    r.end();
    expect(out.text).toMatch(/\[#{40}\].*\n$/);
  });
});

describe('tftp get command helpers', () => {
  it('parses HANDLE:/PATH and refuses anything else', () => {
    expect(parseRemote('files:/images/boot.img')).toEqual({ handle: 'files', path: 'images/boot.img' });
    expect(parseRemote('files:boot.img')).toEqual({ handle: 'files', path: 'boot.img' });
    expect(() => parseRemote('boot.img')).toThrow(CliUsageError);
    expect(() => parseRemote('files:/')).toThrow(CliUsageError);
  });

  it('prints a failover as one line with both PEs, the block and the stall', () => {
    expect(
      failoverLine({
        from: { identifier: 0xa001, host: '127.0.0.1', port: 1 },
        to: { identifier: 0xa002, host: '127.0.0.1', port: 2 },
        atBlock: 34_817,
        stallMs: 612.4,
        cookieEchoed: true,
        reason: 'silent',
      }),
    ).toBe('failover: PE 0x0000a001 -> 0x0000a002 at block 34817, stall 612 ms');
  });
});
