import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { wireSamples } from '../../protocols/samples.js';
import { toHex } from './hex.js';

const TOOL = process.env.RSERPOOL_WIRECHECK ?? fileURLToPath(new URL('../../../shared/tools/rserpool-wirecheck', import.meta.url));
// It may apt-get install tshark first.
const TIMEOUT = 10 * 60 * 1000;

function wirecheck(lines: string[]): { status: number | null; out: string } {
  const r = spawnSync(TOOL, ['-q'], { input: `${lines.join('\n')}\n`, encoding: 'utf8', timeout: TIMEOUT });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('rserpool-wirecheck (Wireshark dissectors + TLV lint)', () => {
  it('the tool is present', () => {
    expect(existsSync(TOOL), `rserpool-wirecheck not found at ${TOOL}; set RSERPOOL_WIRECHECK`).toBe(true);
  });

  it('has a sample of every ASAP and ENRP message type', () => {
    const samples = wireSamples();
    expect(samples.length).toBeGreaterThanOrEqual(24);
    expect(new Set(samples.filter((s) => s.proto === 'asap').map((s) => s.bytes[0])).size).toBe(14);
    expect(new Set(samples.filter((s) => s.proto === 'enrp').map((s) => s.bytes[0])).size).toBe(10);
  });

  it(
    'passes every sample with no error or warning',
    () => {
      const samples = wireSamples();
      const { status, out } = wirecheck(samples.map((s) => `${s.proto} ${toHex(s.bytes)}`));
      expect(out).toContain(`-- ${samples.length} message(s): ${samples.length} ok, 0 failed, 0 with warnings`);
      expect(status, out).toBe(0);
    },
    TIMEOUT,
  );

  it(
    'fails a sample whose pool element length was bumped, and one with transport use 2',
    () => {
      const reg = wireSamples().find((s) => s.name.startsWith('registration (tcp'));
      expect(reg).toBeDefined();
      const bumped = Uint8Array.from(reg!.bytes);
      // Pool element header at 16 (after the 12-byte pool handle): length += 4.
      expect((bumped[16]! << 8) | bumped[17]!).toBe(0x000a);
      bumped[19] = bumped[19]! + 4;
      const badUse = Uint8Array.from(reg!.bytes);
      // User transport at 32: type, length, port, transport use (bytes 38-39).
      expect((badUse[32]! << 8) | badUse[33]!).toBe(0x0005);
      badUse[39] = 2;
      for (const bad of [bumped, badUse]) {
        const { status, out } = wirecheck([`asap ${toHex(bad)}`]);
        expect(out).toContain('1 failed');
        expect(status, out).toBe(1);
      }
    },
    TIMEOUT,
  );
});
