import { describe, expect, it } from 'vitest';
import { createLogger } from '../../lib/logger.js';

function recorder(): { lines: string[]; write(s: string): void } {
  const lines: string[] = [];
  return { lines, write: (s: string) => void lines.push(s) };
}

describe('createLogger', () => {
  it('a child that rebinds component writes one component field, the child’s', () => {
    const out = recorder();
    const log = createLogger('rserpool', 'info', out).child({ component: 'registrar', registrar: '2' }).child({ component: 'enrp', peer: 3 });
    log.warn({ conn: 'tls-2' }, 'refused');
    expect(out.lines).toHaveLength(1);
    const line = out.lines[0]!;
    expect(line.match(/"component"/g)).toHaveLength(1);
    expect(JSON.parse(line)).toMatchObject({ level: 40, component: 'enrp', registrar: '2', peer: 3, conn: 'tls-2', msg: 'refused' });
  });

  it('levels below the threshold write nothing', () => {
    const out = recorder();
    const log = createLogger('x', 'warn', out).child({ component: 'y' });
    log.info({}, 'quiet');
    log.debug({}, 'quiet');
    expect(out.lines).toEqual([]);
  });
});
