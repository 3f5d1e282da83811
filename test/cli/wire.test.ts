import { describe, expect, it } from 'vitest';
import { wireSamples } from '../../protocols/samples.js';
import { runCli } from './run.js';

describe('rserpool wire', () => {
  it('decode prints the message as JSON with its RFC name and the handle as text', async () => {
    const r = await runCli(['wire', 'decode', '--proto', 'asap', '0500001800090011536372697074696e67506f6f6c000000']);
    expect(r.code).toBe(0);
    const msg = JSON.parse(r.stdout) as { name: string; type: number; handle: { hex: string; text: string } };
    expect(msg).toMatchObject({ name: 'ASAP_HANDLE_RESOLUTION', type: 5, handle: { text: 'ScriptingPool' } });
  });

  it('decode names the error code, byte offset and parameter type of bad input, exit 1', async () => {
    // Pool handle length 0xff runs past the 24-byte message.
    const r = await runCli(['wire', 'decode', '05000018000900ff536372697074696e67506f6f6c000000']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/TRUNCATED at byte 6 type 0x09/);
    expect(r.stdout).toBe('');
  });

  it('decode decodes ENRP and TFTP too', async () => {
    const enrp = await runCli([
      'wire',
      'decode',
      '--proto',
      'enrp',
      '0100002c1111111100000000000f000612340000000b0018111111110005001026ad0000000100087f000001',
    ]);
    expect(enrp.code).toBe(0);
    expect(JSON.parse(enrp.stdout)).toMatchObject({ name: 'ENRP_PRESENCE' });
    // RRQ "a" octet
    const tftp = await runCli(['wire', 'decode', '--proto', 'tftp', '000161006f6374657400']);
    expect(tftp.code).toBe(0);
    expect(JSON.parse(tftp.stdout)).toMatchObject({ name: 'TFTP_RRQ', filename: 'a', mode: 'octet' });
  });

  it('refuses a bad --proto and non-hex input with a one-line usage error, exit 2', async () => {
    const proto = await runCli(['wire', 'decode', '--proto', 'sip', '00']);
    expect(proto.code).toBe(2);
    expect(proto.stderr.trim().split('\n')[0]).toMatch(/--proto must be asap, enrp or tftp/);
    const hex = await runCli(['wire', 'decode', 'xyz']);
    expect(hex.code).toBe(2);
    expect(hex.stderr).toMatch(/not a hex string/);
  });

  it('samples prints one line per sample, every ASAP and ENRP message type', async () => {
    const r = await runCli(['wire', 'samples']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    // RFC messages only by default, so a stock Wireshark check passes them: no rserpool extension parameter.
    expect(lines.length).toBe(wireSamples().filter((s) => !s.extension).length);
    expect(lines.filter((l) => /8f0[12]/.test(l.slice(5)))).toEqual([]);
    const all = await runCli(['wire', 'samples', '--extensions']);
    expect(all.stdout.trim().split('\n').length).toBe(wireSamples().length);
    expect(lines.length).toBeGreaterThanOrEqual(24);
    const types = new Set(lines.map((l) => `${l.slice(0, 4)}-${l.slice(5, 7)}`));
    for (let t = 1; t <= 14; t++) expect(types).toContain(`asap-${t.toString(16).padStart(2, '0')}`);
    for (let t = 1; t <= 10; t++) expect(types).toContain(`enrp-${t.toString(16).padStart(2, '0')}`);
  });

  it('an unknown command exits 2 and lists the commands', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command 'frobnicate'/);
    expect(r.stderr).toMatch(/wire/);
  });
});
