import { describe, expect, it } from 'vitest';
import { createTransports } from '../../lib/transport/index.js';
import { AsapMessageType } from '../../protocols/asap/types.js';
import { RawClient, element } from '../registrar/helpers.js';
import { startCli } from '../cli/run.js';

describe('rserpool registrar --print-events', () => {
  it('prints a hostile pool handle escaped: one line, no control bytes, \\xNN for what is not printable', async () => {
    const p = startCli(['registrar', '--asap', 'tcp://127.0.7.5:0', '--http', 'off', '--announce', 'off', '--print-events']);
    try {
      const [, url] = (await p.waitForLine(/^registrar \S+ asap (\S+)/))!;
      const c = await RawClient.connect(createTransports({}), url!);
      const handle = new Uint8Array([...Buffer.from('a\nb\x1b[31m\\ c'), 0xff]);
      c.send({ type: AsapMessageType.Registration, handle, element: element(1) });
      expect((await c.next(AsapMessageType.RegistrationResponse, () => true, 10_000)).error).toBeUndefined();
      const [line] = (await p.waitForLine(/^pe-registered .*/))!;
      expect(line).toBe('pe-registered 0x00000001 a\\x0ab\\x1b[31m\\x5c\\x20c\\xff tcp://127.0.0.1:7000');
      // Valid UTF-8 with a newline and an escape sequence: printed raw before, escaped now.
      c.send({ type: AsapMessageType.Registration, handle: Buffer.from('x\n\x1b[2Jy'), element: element(2) });
      const [line2] = (await p.waitForLine(/^pe-registered 0x00000002 .*/))!;
      expect(line2).toBe('pe-registered 0x00000002 x\\x0a\\x1b[2Jy tcp://127.0.0.1:7000');
      await c.conn.close();
      expect(p.output()).not.toContain('\u001b');
    } finally {
      p.kill('SIGKILL');
      await p.exited;
    }
  });
});
