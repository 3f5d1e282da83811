import { AsapMessageType, decodeAsapMessage } from '../../protocols/asap/index.js';
import { EnrpMessageType, decodeEnrpMessage } from '../../protocols/enrp/index.js';
import { DecodeError } from '../../protocols/errors.js';
import { poolHandleToString } from '../../protocols/parameters/index.js';
import { wireSamples } from '../../protocols/samples.js';
import { TftpOpcode, decodeTftpPacket } from '../../protocols/tftp/index.js';
import { CliUsageError, parseFlags, type Command } from './command.js';

const USAGE = `usage: rserpool wire decode [--proto asap|enrp|tftp] HEX
       rserpool wire samples [--extensions]   (--extensions: also messages with rserpool's ENRP extension parameters)`;

type Proto = 'asap' | 'enrp' | 'tftp';

function parseHex(text: string): Uint8Array {
  const clean = text.replace(/^0x/i, '').replace(/[\s:_-]/g, '');
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) throw new CliUsageError(`not a hex string: ${text}`);
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}

function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** JSON with bytes as hex; a pool handle also as text when it is printable UTF-8. */
function wireToJson(value: unknown): string {
  return JSON.stringify(
    value,
    function (this: unknown, key: string, v: unknown) {
      if (v instanceof Uint8Array) {
        const text = key === 'handle' ? poolHandleToString(v) : undefined;
        // eslint-disable-next-line no-control-regex
        return text !== undefined && !/[\u0000-\u001f\u007f]/.test(text) ? { hex: toHex(v), text } : toHex(v);
      }
      return v;
    },
    2,
  );
}

/** "HandleResolution" in the type table -> "ASAP_HANDLE_RESOLUTION", the RFC's name. */
function rfcName(prefix: string, table: Record<string, number>, value: number): string {
  const key = Object.keys(table).find((k) => table[k] === value);
  return key === undefined ? `${prefix}_UNKNOWN` : `${prefix}_${key.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}`;
}

function decode(proto: Proto, bytes: Uint8Array): unknown {
  switch (proto) {
    case 'asap': {
      const m = decodeAsapMessage(bytes);
      return { name: rfcName('ASAP', AsapMessageType, m.type), ...m };
    }
    case 'enrp': {
      const m = decodeEnrpMessage(bytes);
      return { name: rfcName('ENRP', EnrpMessageType, m.type), ...m };
    }
    case 'tftp': {
      const p = decodeTftpPacket(bytes);
      return { name: rfcName('TFTP', TftpOpcode, p.opcode), ...p };
    }
    default: {
      const never: never = proto;
      throw new CliUsageError(`unknown protocol ${String(never)}`);
    }
  }
}

export const wireCommand: Command = {
  async run(argv: string[]): Promise<number> {
    const { values, positionals } = parseFlags({
      args: argv,
      allowPositionals: true,
      options: { proto: { type: 'string', default: 'asap' }, extensions: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    const [sub, ...rest] = positionals;
    if (sub === 'samples') {
      if (rest.length > 0) throw new CliUsageError(`unexpected argument: ${rest[0]}\n${USAGE}`);
      process.stdout.write(
        wireSamples()
          .filter((s) => values.extensions || !s.extension)
          .map((s) => `${s.proto} ${toHex(s.bytes)}\n`)
          .join(''),
      );
      return 0;
    }
    if (sub !== 'decode') throw new CliUsageError(`${sub === undefined ? 'missing subcommand' : `unknown subcommand '${sub}'`}\n${USAGE}`);
    const proto = values.proto;
    if (proto !== 'asap' && proto !== 'enrp' && proto !== 'tftp') throw new CliUsageError(`--proto must be asap, enrp or tftp, not '${proto}'`);
    if (rest.length === 0) throw new CliUsageError(`missing HEX\n${USAGE}`);
    const bytes = parseHex(rest.join(''));
    try {
      process.stdout.write(`${wireToJson(decode(proto, bytes))}\n`);
      return 0;
    } catch (err) {
      if (err instanceof DecodeError) {
        const type = err.tlvType === undefined ? '' : ` type 0x${err.tlvType.toString(16).padStart(2, '0')}`;
        // The message repeats offset and type in parentheses; say them once.
        const what = err.message.replace(/ \(offset \d+(, type 0x[0-9a-f]+)?\)$/, '');
        process.stderr.write(`rserpool wire: ${proto} decode error ${err.code} at byte ${err.offset}${type}: ${what}\n`);
        return 1;
      }
      throw err;
    }
  },
};
