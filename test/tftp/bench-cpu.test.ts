import { describe, expect, it } from 'vitest';
import { parseProcStat, perGB } from '../bench/_tftp-cpu.js';
import { quantile } from '../bench/_tftp-common.js';

describe('tftp bench figures', () => {
  it('parseProcStat - reads utime, stime, cutime, cstime after a command name with spaces and parentheses', () => {
    const line = '4242 (in.tftpd (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 731 42 17 5 20 0 1 0 123 4567 89 1844 0 0 0';
    expect(parseProcStat(line)).toEqual({ utime: 731, stime: 42, cutime: 17, cstime: 5 });
  });

  it('parseProcStat - refuses a line without the command name', () => {
    expect(() => parseProcStat('4242 S 1 2 3')).toThrow(/not a \/proc\/PID\/stat line/);
  });

  it('perGB - CPU seconds per 10^9 bytes', () => {
    expect(perGB(0.5, 100_000_000)).toBeCloseTo(5);
    expect(perGB(1, 0)).toBe(0);
  });

  it('quantile - interpolates between order statistics', () => {
    expect(quantile([3, 1, 2], 0.5)).toBe(2);
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 0.99)).toBeCloseTo(10.9);
    expect(quantile([], 0.5)).toBeNaN();
  });
});
