import { describe, expect, it } from 'vitest';
import { wireSamples } from '../../protocols/samples.js';
import { wirecheck, type WireProto } from '../support/wirecheck.js';
import { VECTOR_NAMES, vector } from '../vectors/index.js';

/** `bytes` with `at` overwritten by `with`. */
function patched(bytes: Uint8Array, at: number, ...values: number[]): Uint8Array {
  const b = Uint8Array.from(bytes);
  b.set(values, at);
  return b;
}

describe('wire check (Wireshark dissectors + TLV lint)', () => {
  it('has a sample of every ASAP and ENRP message type', () => {
    const samples = wireSamples();
    expect(samples.length).toBeGreaterThanOrEqual(24);
    expect(new Set(samples.filter((s) => s.proto === 'asap').map((s) => s.bytes[0])).size).toBe(14);
    expect(new Set(samples.filter((s) => s.proto === 'enrp').map((s) => s.bytes[0])).size).toBe(10);
  });

  it('passes every sample and reference vector with no error or warning, each decoded as its type', async () => {
    const messages = [
      ...wireSamples().map((s) => ({ proto: s.proto, bytes: s.bytes, label: s.name })),
      ...VECTOR_NAMES.map((n) => ({ ...vector(n), label: n })),
    ];
    const report = await wirecheck(messages, { strict: true });
    expect(report.failed, report.text()).toEqual([]);
    expect(report.messages.filter((m) => m.warnings.length > 0)).toEqual([]);
    expect(report.types.size).toBe(24);
    expect(report.messages.map((m) => m.type)).toEqual(messages.map((m) => expect.stringMatching(new RegExp(`^${m.proto.toUpperCase()}_`)) as unknown));
  });

  it('fails corrupted messages, saying whether tshark or the lint found each fault', async () => {
    const reg = vector('asap-registration').bytes;
    const presence = vector('enrp-presence').bytes;
    const sample = wireSamples().find((s) => s.name.startsWith('registration (tcp'))!.bytes;
    // Pool element header at 16 (after the 12-byte pool handle); its user transport at 32.
    expect([sample[17], sample[33]]).toEqual([0x0a, 0x05]);
    const cases: Array<{ label: string; proto: WireProto; bytes: Uint8Array; finds: RegExp[] }> = [
      {
        label: 'pool handle length 12 -> 64',
        proto: 'asap',
        bytes: patched(reg, 6, 0x00, 0x40),
        finds: [/^tshark: \[Malformed Packet/, /^lint: .*length 1 \(< 4\)/],
      },
      { label: 'message length 72 -> 80', proto: 'asap', bytes: patched(reg, 2, 0x00, 0x50), finds: [/^lint: message length field 80 > 72/] },
      {
        label: 'truncated to 50 bytes',
        proto: 'asap',
        bytes: reg.slice(0, 50),
        finds: [/^tshark: \[Malformed Packet/, /^lint: message is 50 bytes, not a multiple of 4/],
      },
      {
        label: 'unknown parameter 0x0077',
        proto: 'asap',
        bytes: patched(reg, 4, 0x00, 0x77),
        finds: [/^tshark: unknown parameter type 0x0077/, /^lint: .*unknown parameter type 0x0077/],
      },
      { label: 'PE checksum length 0', proto: 'enrp', bytes: patched(presence, 14, 0x00, 0x00), finds: [/^tshark: \[Malformed Packet/] },
      { label: 'pool element length + 4', proto: 'asap', bytes: patched(sample, 19, sample[19]! + 4), finds: [/^lint: /] },
      { label: 'transport use 2', proto: 'asap', bytes: patched(sample, 39, 2), finds: [/^lint: .*Transport Use 2/] },
    ];
    const report = await wirecheck(cases);
    expect(
      report.failed.map((m) => m.label),
      report.text(),
    ).toEqual(cases.map((c) => c.label));
    for (const [i, c] of cases.entries()) {
      for (const find of c.finds) expect(report.messages[i]!.errors, c.label).toContainEqual(expect.stringMatching(find));
    }
  });
});
