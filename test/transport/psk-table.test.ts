import { describe, expect, it } from 'vitest';
import { parsePskTable } from '../../lib/cli/options.js';

describe('--tls-psk-file', () => {
  it('reads one IDENTITY:HEXKEY per line, skipping blanks and comments', () => {
    const table = parsePskTable(`# registrars\nreg-1:${'11'.repeat(16)}\n\n  pe-a:${'aa'.repeat(32)}  \r\n`, 'keys');
    expect([...table.keys()]).toEqual(['reg-1', 'pe-a']);
    expect(table.get('pe-a')).toEqual(Buffer.alloc(32, 0xaa));
  });

  it('names the file and line of a bad entry, never the key', () => {
    const short = 'ab'.repeat(8 - 1);
    expect(() => parsePskTable(`ok:${'11'.repeat(16)}\nweak:${short}\n`, 'keys')).toThrow(/keys:2: the key of 'weak' has 7 bytes/);
    expect(() => parsePskTable('no-key-here\n', 'keys')).toThrow(/keys:1 takes IDENTITY:HEXKEY$/);
    expect(() => parsePskTable(`a:${'11'.repeat(16)}\na:${'22'.repeat(16)}\n`, 'keys')).toThrow(/keys:2: 'a' is listed twice/);
    expect(() => parsePskTable('# nothing\n', 'keys')).toThrow(/no IDENTITY:HEXKEY line/);
    expect(() => parsePskTable(`weak:${short}`, 'keys')).toThrow(expect.objectContaining({ message: expect.not.stringContaining(short) }));
  });
});
