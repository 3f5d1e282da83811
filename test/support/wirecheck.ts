/**
 * The wire check: our ASAP (RFC 5352) and ENRP (RFC 5353) bytes, with the
 * parameters of RFC 5354, are decoded by Wireshark's own dissectors (tshark,
 * Debian package `tshark`), and a TLV layout lint does what the dissectors
 * do not (lengths, padding, nesting, fixed sizes).
 *
 * A message fails on a malformed packet, an expert info of severity Error,
 * a message type, parameter type, policy or error cause tshark does not
 * know, or a lint error. Warnings (reserved bits, non-zero padding, a
 * parameter a message normally carries missing) fail only with `strict`.
 *
 * Bytes go to tshark as a pcap of link type 252 (Wireshark Upper PDU) naming
 * the dissector table `sctp.ppi` and PPID 11 (ASAP) or 12 (ENRP): exactly the
 * dissector an SCTP DATA chunk would reach, with no headers in the way.
 * Captures are read with the ASAP/ENRP dissectors off: TCP streams are put
 * back together and split on the message length, UDP is one message per
 * datagram, SCTP one per whole DATA chunk; then each message is checked as above.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type WireProto = 'asap' | 'enrp';

export const ASAP_PPID = 11;
export const ENRP_PPID = 12;
export const ASAP_PORT = 3863;
export const ENRP_PORT = 9901;

const ASAP_TYPES: Record<number, string> = {
  0x01: 'ASAP_REGISTRATION',
  0x02: 'ASAP_DEREGISTRATION',
  0x03: 'ASAP_REGISTRATION_RESPONSE',
  0x04: 'ASAP_DEREGISTRATION_RESPONSE',
  0x05: 'ASAP_HANDLE_RESOLUTION',
  0x06: 'ASAP_HANDLE_RESOLUTION_RESPONSE',
  0x07: 'ASAP_ENDPOINT_KEEP_ALIVE',
  0x08: 'ASAP_ENDPOINT_KEEP_ALIVE_ACK',
  0x09: 'ASAP_ENDPOINT_UNREACHABLE',
  0x0a: 'ASAP_SERVER_ANNOUNCE',
  0x0b: 'ASAP_COOKIE',
  0x0c: 'ASAP_COOKIE_ECHO',
  0x0d: 'ASAP_BUSINESS_CARD',
  0x0e: 'ASAP_ERROR',
};
const ENRP_TYPES: Record<number, string> = {
  0x01: 'ENRP_PRESENCE',
  0x02: 'ENRP_HANDLE_TABLE_REQUEST',
  0x03: 'ENRP_HANDLE_TABLE_RESPONSE',
  0x04: 'ENRP_HANDLE_UPDATE',
  0x05: 'ENRP_LIST_REQUEST',
  0x06: 'ENRP_LIST_RESPONSE',
  0x07: 'ENRP_INIT_TAKEOVER',
  0x08: 'ENRP_INIT_TAKEOVER_ACK',
  0x09: 'ENRP_TAKEOVER_SERVER',
  0x0a: 'ENRP_ERROR',
};
const typesOf = (p: WireProto): Record<number, string> => (p === 'asap' ? ASAP_TYPES : ENRP_TYPES);

const P_IPV4 = 0x1,
  P_IPV6 = 0x2,
  P_DCCP = 0x3,
  P_SCTP = 0x4,
  P_TCP = 0x5,
  P_UDP = 0x6,
  P_UDPLITE = 0x7;
const P_POLICY = 0x8,
  P_HANDLE = 0x9,
  P_PE = 0xa,
  P_SERVER_INFO = 0xb,
  P_OP_ERROR = 0xc;
const P_COOKIE = 0xd,
  P_PE_ID = 0xe,
  P_PE_CHECKSUM = 0xf,
  P_HROPT = 0x803f;
/**
 * rserpool's own ENRP extensions, typed 0b10xx (RFC 5354: skip, do not
 * report): tshark shows them as "Unknown Parameter" and decodes the rest,
 * which is what an RFC peer must do. Accepted only in ENRP messages.
 */
const P_OWNER = 0x8f01,
  P_UNREACHABLE_REPORT = 0x8f02;
const EXTENSION_PARAMS: Record<number, string> = {
  [P_OWNER]: 'PE Owner Identity (rserpool)',
  [P_UNREACHABLE_REPORT]: 'Unreachable Report (rserpool)',
};
const PARAM_TYPES: Record<number, string> = {
  [P_IPV4]: 'IPv4 Address',
  [P_IPV6]: 'IPv6 Address',
  [P_DCCP]: 'DCCP Transport',
  [P_SCTP]: 'SCTP Transport',
  [P_TCP]: 'TCP Transport',
  [P_UDP]: 'UDP Transport',
  [P_UDPLITE]: 'UDP-Lite Transport',
  [P_POLICY]: 'Pool Member Selection Policy',
  [P_HANDLE]: 'Pool Handle',
  [P_PE]: 'Pool Element',
  [P_SERVER_INFO]: 'Server Information',
  [P_OP_ERROR]: 'Operation Error',
  [P_COOKIE]: 'Cookie',
  [P_PE_ID]: 'PE Identifier',
  [P_PE_CHECKSUM]: 'PE Checksum',
  [P_HROPT]: 'Handle Resolution Option',
};
const ADDRESS_PARAMS = [P_IPV4, P_IPV6];
const TRANSPORT_PARAMS = [P_DCCP, P_SCTP, P_TCP, P_UDP, P_UDPLITE];

/** RFC 5356 plus the RSPLIB policies Wireshark knows. */
const POLICY_TYPES: Record<number, string> = {
  0x00000001: 'Round Robin',
  0x00000002: 'Weighted Round Robin',
  0x00000003: 'Random',
  0x00000004: 'Weighted Random',
  0x00000005: 'Priority',
  0x40000001: 'Least Used',
  0x40000002: 'Least Used with Degradation',
  0x40000003: 'Priority Least Used',
  0x40000004: 'Randomized Least Used',
  0xb0001003: 'Priority Least Used with Degradation',
  0xb0002001: 'Weighted Random with DPF',
  0xb0002002: 'Least Used with DPF',
};
/** Whole parameter lengths of the RFC 5356 policies whose layout is unambiguous. */
const POLICY_LENGTHS: Record<number, number> = {
  0x00000001: 8,
  0x00000003: 8,
  0x00000002: 12,
  0x00000004: 12,
  0x00000005: 12,
  0x40000001: 12,
  0x40000004: 12,
};

const CAUSE_CODES: Record<number, string> = {
  0x1: 'Unrecognized Parameter',
  0x2: 'Unrecognized Message',
  0x3: 'Invalid Values',
  0x4: 'Non-unique PE Identifier',
  0x5: 'Inconsistent Pooling Policy',
  0x6: 'Lack of Resources',
  0x7: 'Inconsistent Transport Type',
  0x8: 'Inconsistent Data/Control Configuration',
  0x9: 'Unknown Pool Handle',
  0xa: 'Rejection due to Security Considerations',
};

/** Flag bits defined per message type; the others are reserved. */
const ASAP_FLAGS: Record<number, number> = { 0x03: 0x01, 0x07: 0x01 };
const ENRP_FLAGS: Record<number, number> = { 0x01: 0x01, 0x02: 0x01, 0x03: 0x03, 0x04: 0x01, 0x06: 0x01 };

/** Parameters each message normally carries (warnings only). */
const ASAP_REQUIRED: Record<number, number[]> = {
  0x01: [P_HANDLE, P_PE],
  0x02: [P_HANDLE, P_PE_ID],
  0x03: [P_HANDLE, P_PE_ID],
  0x04: [P_HANDLE, P_PE_ID],
  0x05: [P_HANDLE],
  0x06: [P_HANDLE],
  0x07: [P_HANDLE],
  0x08: [P_HANDLE, P_PE_ID],
  0x09: [P_HANDLE, P_PE_ID],
  0x0b: [P_COOKIE],
  0x0c: [P_COOKIE],
  0x0d: [P_HANDLE],
  0x0e: [P_OP_ERROR],
};
const ENRP_REQUIRED: Record<number, number[]> = { 0x01: [P_PE_CHECKSUM], 0x04: [P_HANDLE, P_PE], 0x0a: [P_OP_ERROR] };

/** ENRP types with a fixed total length and no parameters. */
const ENRP_EXACT_LENGTH: Record<number, number> = { 0x02: 12, 0x05: 12, 0x07: 16, 0x08: 16, 0x09: 16 };

const SEV_WARN = 0x00600000;
const SEV_ERROR = 0x00800000;

export interface WireMessage {
  readonly proto: WireProto;
  readonly bytes: Uint8Array;
  readonly label?: string;
}

export interface CheckedMessage {
  readonly label: string;
  readonly proto: WireProto;
  readonly bytes: Uint8Array;
  /** The message type tshark decoded, e.g. `ASAP_REGISTRATION`; undefined when it decoded none it knows. */
  type: string | undefined;
  readonly errors: string[];
  readonly warnings: string[];
  /** tshark's decoded tree (JSON), for the report. */
  tree: unknown;
}

export interface WireReport {
  readonly messages: readonly CheckedMessage[];
  /** Things that could not be checked (a gap in a capture, a fragmented chunk). */
  readonly notes: readonly string[];
  /** Messages with an error; with `strict`, also those with a warning. */
  readonly failed: readonly CheckedMessage[];
  /** The message types seen. */
  readonly types: ReadonlySet<string>;
  /** Every failed or warned message with its faults and tree, the notes and a count: what a failed assertion should show. */
  text(): string;
}

export interface CheckOptions {
  /** Unknown parameter types are warnings, not errors. */
  allowUnknown?: boolean;
  /** Warnings fail too. */
  strict?: boolean;
}

export interface PcapOptions extends CheckOptions {
  /** Ports carrying ASAP over TCP, UDP or SCTP (default 3863). */
  asapPorts?: readonly number[];
  /** Ports carrying ENRP (default 9901). */
  enrpPorts?: readonly number[];
}

/** Checks each message with tshark's dissectors and the lint. */
export async function wirecheck(messages: readonly WireMessage[], options: CheckOptions = {}): Promise<WireReport> {
  const checked = messages.map((m, i) => newMessage(m.label ?? `message ${i + 1}`, m.proto, m.bytes));
  return check(checked, [], options);
}

/** Checks every ASAP/ENRP message in a capture (pcap or pcapng). */
export async function wirecheckPcap(file: string, options: PcapOptions = {}): Promise<WireReport> {
  const notes: string[] = [];
  const messages = await readPcap(file, new Set(options.asapPorts ?? [ASAP_PORT]), new Set(options.enrpPorts ?? [ENRP_PORT]), notes);
  return check(messages, notes, options);
}

async function check(messages: CheckedMessage[], notes: string[], options: CheckOptions): Promise<WireReport> {
  await decodeWithTshark(messages);
  for (const m of messages) if (m.bytes.length > 0) lint(m, options.allowUnknown ?? false);
  const failed = messages.filter((m) => m.errors.length > 0 || (options.strict === true && m.warnings.length > 0));
  const types = new Set(messages.flatMap((m) => (m.type ? [m.type] : [])));
  return { messages, notes, failed, types, text: () => reportText(messages, failed, notes) };
}

function newMessage(label: string, proto: WireProto, bytes: Uint8Array): CheckedMessage {
  const m: CheckedMessage = { label, proto, bytes, type: undefined, errors: [], warnings: [], tree: undefined };
  if (bytes.length === 0) m.errors.push('input: empty message');
  return m;
}

function reportText(messages: readonly CheckedMessage[], failed: readonly CheckedMessage[], notes: readonly string[]): string {
  const lines: string[] = [];
  for (const m of messages) {
    if (m.errors.length === 0 && m.warnings.length === 0) continue;
    lines.push(`== ${m.label}  ${m.proto.toUpperCase()} ${m.type ?? '?'}  ${m.bytes.length} bytes  -> ${failed.includes(m) ? 'FAIL' : 'OK (warnings)'}`);
    lines.push(`   hex: ${Buffer.from(m.bytes).toString('hex')}`);
    for (const e of m.errors) lines.push(`   ERROR   ${e}`);
    for (const w of m.warnings) lines.push(`   warning ${w}`);
    if (m.tree !== undefined) lines.push(`   tshark: ${JSON.stringify(m.tree)}`);
  }
  for (const n of notes) lines.push(`note: ${n}`);
  const warned = messages.filter((m) => m.warnings.length > 0).length;
  lines.push(`-- ${messages.length} message(s): ${messages.length - failed.length} ok, ${failed.length} failed, ${warned} with warnings`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------
// tshark
// ---------------------------------------------------------------------------

const TSHARK_TIMEOUT_MS = 120_000;

function runTshark(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('tshark', args, { encoding: 'utf8', maxBuffer: 1 << 30, timeout: TSHARK_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return reject(new Error('tshark not found: install the Debian package tshark'));
      const why = stderr
        .split('\n')
        .filter((l) => l.trim() && !l.includes('Running as user'))
        .join('\n');
      reject(new Error(`tshark ${args.join(' ')} failed (${err.code ?? err.signal}): ${why}`));
    });
  });
}

/** One packet per message, link type 252, each naming the dissector table `sctp.ppi` and the message's PPID. */
function exportedPduPcap(messages: readonly CheckedMessage[]): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(262144, 16);
  head.writeUInt32LE(252, 20);
  parts.push(head);
  const table = Buffer.from('sctp.ppi');
  messages.forEach((m, i) => {
    const tags = Buffer.alloc(4 + table.length + 8 + 4);
    tags.writeUInt16BE(14, 0); // dissector table name
    tags.writeUInt16BE(table.length, 2);
    table.copy(tags, 4);
    let o = 4 + table.length;
    tags.writeUInt16BE(32, o); // dissector table value
    tags.writeUInt16BE(4, o + 2);
    tags.writeUInt32BE(m.proto === 'asap' ? ASAP_PPID : ENRP_PPID, o + 4);
    o += 8;
    tags.writeUInt32BE(0, o); // end of options
    const len = tags.length + m.bytes.length;
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(1_000_000_000 + i, 0);
    rec.writeUInt32LE(len, 8);
    rec.writeUInt32LE(len, 12);
    parts.push(rec, tags, Buffer.from(m.bytes));
  });
  return Buffer.concat(parts);
}

function fieldInt(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  const t = text.trim();
  const v = /^0x[0-9a-f]+$/i.test(t) ? parseInt(t, 16) : /^\d+$/.test(t) ? parseInt(t, 10) : NaN;
  return Number.isNaN(v) ? undefined : v;
}

async function withTempDir<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'rserpool-wirecheck-'));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function decodeWithTshark(messages: readonly CheckedMessage[]): Promise<void> {
  const todo = messages.filter((m) => m.bytes.length > 0);
  if (todo.length === 0) return;
  const json = await withTempDir(async (dir) => {
    const file = join(dir, 'messages.pcap');
    await writeFile(file, exportedPduPcap(todo));
    // Repeated fields become arrays rather than duplicate keys JSON.parse would drop.
    return runTshark(['-n', '-r', file, '-T', 'json', '--no-duplicate-keys']);
  });
  const packets = JSON.parse(json) as Array<{ _source?: { layers?: Record<string, unknown> } }>;
  if (packets.length !== todo.length) throw new Error(`tshark returned ${packets.length} packets for ${todo.length} messages`);
  todo.forEach((m, i) => analyse(m, packets[i]?._source?.layers ?? {}));
}

type Visit = (key: string, value: unknown, inCause: boolean) => void;

/** Every key/value under `node`, with arrays (repeated fields) spread; `inCause` below an error cause. */
function walk(node: unknown, p: WireProto, inCause: boolean, visit: Visit): void {
  if (node === null || typeof node !== 'object') return;
  const obj = node as Record<string, unknown>;
  const cause = inCause || `${p}.cause_code` in obj;
  for (const [key, value] of Object.entries(obj)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      visit(key, v, cause);
      walk(v, p, cause, visit);
    }
  }
}

function analyse(m: CheckedMessage, layers: Record<string, unknown>): void {
  const p = m.proto;
  const top = ([] as unknown[]).concat(layers[p] ?? [])[0];
  m.tree = top;
  if (top === undefined || typeof top !== 'object') {
    m.errors.push(`tshark: not decoded as ${p.toUpperCase()} at all`);
  } else {
    const t = fieldInt((top as Record<string, unknown>)[`${p}.message_type`]);
    m.type = t === undefined ? undefined : typesOf(p)[t];
    if (m.type === undefined) m.errors.push(`tshark: unknown ${p.toUpperCase()} message type (${t ?? 'none'})`);
  }
  walk(layers, p, false, (key, value, inCause) => {
    if (key === '_ws.malformed' && value !== null && typeof value === 'object') {
      const expert = (value as Record<string, Record<string, unknown> | undefined>)['_ws.expert'];
      m.errors.push(`tshark: [${String(expert?.['_ws.expert.message'] ?? 'Malformed Packet')}]`);
    } else if (key === '_ws.expert' && value !== null && typeof value === 'object') {
      const e = value as Record<string, unknown>;
      const text = String(e['_ws.expert.message'] ?? '');
      const sev = fieldInt(e['_ws.expert.severity']);
      if (text.includes('Malformed Packet') || sev === undefined) return; // reported as malformed
      if (sev >= SEV_ERROR) m.errors.push(`tshark: ${text}`);
      else if (sev >= SEV_WARN) m.warnings.push(`tshark: ${text}`);
    } else if (key === `${p}.parameter_type` && !inCause) {
      // Unknown types quoted inside an error cause are what the cause reports, not a fault.
      const v = fieldInt(value) ?? 0;
      if (PARAM_TYPES[v] === undefined && (p !== 'enrp' || EXTENSION_PARAMS[v] === undefined)) m.errors.push(`tshark: unknown parameter type 0x${hex(v, 4)}`);
    } else if (key === `${p}.pool_member_selection_policy_type` && !inCause) {
      const v = fieldInt(value) ?? 0;
      if (POLICY_TYPES[v] === undefined) m.errors.push(`tshark: unknown member selection policy 0x${hex(v, 8)}`);
    } else if (key === `${p}.cause_code`) {
      const v = fieldInt(value) ?? 0;
      if (CAUSE_CODES[v] === undefined) m.errors.push(`tshark: unknown error cause code 0x${hex(v, 4)}`);
    }
  });
}

const hex = (v: number, digits: number): string => v.toString(16).padStart(digits, '0');

// ---------------------------------------------------------------------------
// The layout lint (no tshark)
// ---------------------------------------------------------------------------

function lint(m: CheckedMessage, allowUnknown: boolean): void {
  const d = m.bytes;
  const n = d.length;
  const err = (s: string): void => void m.errors.push(`lint: ${s}`);
  const warn = (s: string): void => void m.warnings.push(`lint: ${s}`);
  if (n < 4) return err(`${n} byte(s) - shorter than the 4-byte message header`);
  const view = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const mtype = d[0]!;
  const flags = d[1]!;
  const mlen = view.getUint16(2);
  const p = m.proto;
  const types = typesOf(p);
  const name = types[mtype];
  if (name === undefined) err(`unknown ${p.toUpperCase()} message type 0x${hex(mtype, 2)}`);
  if (mlen < 4) err(`message length field ${mlen} < 4`);
  else if (mlen > n) err(`message length field ${mlen} > ${n} bytes present (truncated, or wrong length)`);
  else if (n - mlen >= 4 || (n - mlen > 0 && mlen % 4 === 0))
    err(`message length field ${mlen} but ${n} bytes present (${n - mlen} extra byte(s) after the message)`);
  else if (d.subarray(mlen).some((b) => b !== 0)) err(`non-zero bytes in the final padding after message length ${mlen}`);
  if (n % 4) err(`message is ${n} bytes, not a multiple of 4 (the last parameter must be zero-padded to a 4-byte boundary, RFC 5354 s.2)`);
  const allowed = (p === 'asap' ? ASAP_FLAGS : ENRP_FLAGS)[mtype] ?? 0;
  if (flags & ~allowed & 0xff) warn(`reserved flag bits set: 0x${hex(flags & ~allowed & 0xff, 2)} (defined for this type: 0x${hex(allowed, 2)})`);
  if (name === undefined) return;

  let start = 4;
  if (p === 'asap' && (mtype === 0x07 || mtype === 0x0a)) start = 8; // server identifier
  if (p === 'enrp') {
    start = mtype === 0x04 ? 16 : 12; // sender + receiver id [+ update action, reserved]
    const want = ENRP_EXACT_LENGTH[mtype];
    if (want !== undefined) {
      if (n !== want || mlen !== want) err(`${name} must be exactly ${want} bytes (length field ${mlen}, ${n} bytes present)`);
      return;
    }
  }
  if (n < start) return err(`${name} needs at least ${start} bytes before its parameters, only ${n} present`);
  if (p === 'enrp' && mtype === 0x04) {
    const action = view.getUint16(12);
    const reserved = view.getUint16(14);
    if (action !== 0 && action !== 1) err(`ENRP_HANDLE_UPDATE update action ${action} (0 = add, 1 = delete)`);
    if (reserved) warn(`ENRP_HANDLE_UPDATE reserved field 0x${hex(reserved, 4)} is not zero`);
  }
  const before = m.errors.length;
  const top = walkParams(m, view, start, n, 'message', allowUnknown);
  if (m.errors.length > before) return; // structure already broken: no completeness check
  const present = new Set(top.map((x) => x.type));
  for (const t of (p === 'asap' ? ASAP_REQUIRED : ENRP_REQUIRED)[mtype] ?? []) {
    if (!present.has(t)) warn(`${name} without a ${PARAM_TYPES[t]} parameter (0x${hex(t, 4)})`);
  }
}

interface Param {
  type: number;
  offset: number;
  length: number;
}

function walkParams(m: CheckedMessage, d: DataView, start: number, end: number, where: string, allowUnknown: boolean): Param[] {
  const items: Param[] = [];
  let off = start;
  while (off < end) {
    if (end - off < 4) {
      m.errors.push(`lint: ${where}: ${end - off} stray byte(s) at offset ${off}, too short for a parameter header`);
      break;
    }
    const t = d.getUint16(off);
    const l = d.getUint16(off + 2);
    const name = PARAM_TYPES[t] ?? 'unknown';
    if (l < 4) {
      m.errors.push(`lint: ${where}: parameter 0x${hex(t, 4)} (${name}) at offset ${off} has length ${l} (< 4)`);
      break;
    }
    if (off + l > end) {
      m.errors.push(`lint: ${where}: parameter 0x${hex(t, 4)} (${name}) at offset ${off} has length ${l} but only ${end - off} byte(s) remain`);
      break;
    }
    const padded = l + ((4 - (l % 4)) % 4);
    if (off + padded > end && off + l !== end) m.errors.push(`lint: ${where}: parameter 0x${hex(t, 4)} at offset ${off} is followed by a partial padding`);
    for (let i = off + l; i < Math.min(off + padded, end); i++) {
      if (d.getUint8(i) !== 0) {
        m.warnings.push(`lint: ${where}: non-zero padding after parameter 0x${hex(t, 4)} at offset ${off}`);
        break;
      }
    }
    checkParam(m, d, t, off, l, where, allowUnknown);
    items.push({ type: t, offset: off, length: l });
    off += padded;
  }
  return items;
}

function checkParam(m: CheckedMessage, d: DataView, t: number, off: number, l: number, where: string, allowUnknown: boolean): void {
  const here = `${where} > ${PARAM_TYPES[t] ?? `0x${hex(t, 4)}`}@${off}`;
  const err = (s: string): void => void m.errors.push(`lint: ${here}: ${s}`);
  const exact = (want: number): boolean => (l === want ? true : (err(`length ${l}, must be ${want}`), false));
  const atLeast = (want: number): boolean => (l >= want ? true : (err(`length ${l}, must be at least ${want}`), false));
  const kinds = (sub: Param[]): string => sub.map((x) => `0x${hex(x.type, 4)}`).join(', ') || 'nothing';

  if (t === P_IPV4) exact(8);
  else if (t === P_IPV6) exact(20);
  else if (TRANSPORT_PARAMS.includes(t)) {
    const fixed = t === P_DCCP ? 12 : 8;
    if (!atLeast(fixed)) return;
    if (t === P_SCTP || t === P_TCP) {
      const use = d.getUint16(off + 6);
      if (use !== 0 && use !== 1) err(`Transport Use ${use} (0 = data only, 1 = data plus control)`);
    } else if ((t === P_UDP || t === P_UDPLITE) && d.getUint16(off + 6) !== 0) {
      m.warnings.push(`lint: ${here}: reserved field is not zero`);
    }
    const sub = walkParams(m, d, off + fixed, off + l, here, allowUnknown);
    const addrs = sub.filter((x) => ADDRESS_PARAMS.includes(x.type));
    if (addrs.length !== sub.length) err('may only contain IPv4/IPv6 address parameters');
    if (addrs.length === 0) err('contains no address parameter');
    else if (addrs.length > 1 && t !== P_SCTP) err(`${addrs.length} addresses, only SCTP transport may carry more than one`);
  } else if (t === P_POLICY) {
    if (!atLeast(8)) return;
    const pt = d.getUint32(off + 4);
    const want = POLICY_LENGTHS[pt];
    if (POLICY_TYPES[pt] === undefined) err(`unknown policy type 0x${hex(pt, 8)}`);
    else if (want !== undefined && l !== want) err(`${POLICY_TYPES[pt]} policy parameter has length ${l}, must be ${want}`);
  } else if (t === P_HANDLE) {
    if (l === 4) m.warnings.push(`lint: ${here}: empty pool handle`);
  } else if (t === P_PE) {
    if (!atLeast(16)) return;
    const sub = walkParams(m, d, off + 16, off + l, here, allowUnknown);
    const k = sub.map((x) => x.type);
    const ok =
      (k.length === 2 || k.length === 3) && TRANSPORT_PARAMS.includes(k[0]!) && k[1] === P_POLICY && (k.length === 2 || TRANSPORT_PARAMS.includes(k[2]!));
    if (!ok) err(`must hold User Transport, Member Selection Policy [, ASAP Transport] in that order; holds ${kinds(sub)}`);
  } else if (t === P_SERVER_INFO) {
    if (!atLeast(8)) return;
    const sub = walkParams(m, d, off + 8, off + l, here, allowUnknown);
    if (sub.length !== 1 || !TRANSPORT_PARAMS.includes(sub[0]!.type)) err(`must hold exactly one transport parameter; holds ${kinds(sub)}`);
  } else if (t === P_OP_ERROR) {
    let o = off + 4;
    const e = off + l;
    while (o < e) {
      if (e - o < 4) {
        err(`${e - o} stray byte(s) in error causes`);
        break;
      }
      const code = d.getUint16(o);
      const clen = d.getUint16(o + 2);
      if (CAUSE_CODES[code] === undefined) err(`unknown cause code 0x${hex(code, 4)}`);
      if (clen < 4 || o + clen > e) {
        err(`cause 0x${hex(code, 4)} has bad length ${clen}`);
        break;
      }
      o += clen + ((4 - (clen % 4)) % 4);
    }
  } else if (t === P_COOKIE) {
    if (l === 4) m.warnings.push(`lint: ${here}: empty cookie`);
  } else if (t === P_PE_ID) exact(8);
  else if (t === P_PE_CHECKSUM) exact(6);
  else if (t === P_HROPT) exact(8);
  else if (m.proto === 'enrp' && t === P_OWNER) exact(36);
  else if (m.proto === 'enrp' && t === P_UNREACHABLE_REPORT) atLeast(8);
  else {
    const text = `lint: ${where}: unknown parameter type 0x${hex(t, 4)} (${l - 4}-byte value)`;
    (allowUnknown ? m.warnings : m.errors).push(text);
  }
}

// ---------------------------------------------------------------------------
// Captures
// ---------------------------------------------------------------------------

async function tsharkFields(file: string, filter: string, fields: string[]): Promise<string[][]> {
  const args = ['-n', '-r', file, '--disable-protocol', 'asap', '--disable-protocol', 'enrp', '-Y', filter, '-T', 'fields'];
  args.push('-E', 'separator=/t', '-E', 'occurrence=a', '-E', 'aggregator=,', ...fields.flatMap((f) => ['-e', f]));
  const out = await runTshark(args);
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const r = l.split('\t');
      while (r.length < fields.length) r.push('');
      return r;
    });
}

function protoForPorts(sport: number, dport: number, asap: ReadonlySet<number>, enrp: ReadonlySet<number>): WireProto | undefined {
  for (const port of [dport, sport]) {
    if (asap.has(port)) return 'asap';
    if (enrp.has(port)) return 'enrp';
  }
  return undefined;
}

const payload = (text: string): Uint8Array | undefined => {
  const h = text.replace(/:/g, '');
  return /^([0-9a-f]{2})*$/i.test(h) ? Uint8Array.from(Buffer.from(h, 'hex')) : undefined;
};

async function readPcap(file: string, asapPorts: ReadonlySet<number>, enrpPorts: ReadonlySet<number>, notes: string[]): Promise<CheckedMessage[]> {
  const ports = [...new Set([...asapPorts, ...enrpPorts])].sort((a, b) => a - b);
  const anyPort = (field: string): string => `(${ports.map((x) => `${field} == ${x}`).join(' || ')})`;
  const msgs: CheckedMessage[] = [];
  const label = (proto: WireProto | undefined): WireProto => proto ?? 'asap';

  // TCP: each direction of each stream put back together from the sequence
  // numbers and split on the 16-bit length (rounded up to a multiple of 4).
  const tcpRows = await tsharkFields(file, `tcp.len > 0 && ${anyPort('tcp.port')}`, [
    'frame.number',
    'tcp.stream',
    'ip.src',
    'ipv6.src',
    'tcp.srcport',
    'ip.dst',
    'ipv6.dst',
    'tcp.dstport',
    'tcp.seq',
    'tcp.payload',
  ]);
  interface Segment {
    seq: number;
    frame: number;
    data: Uint8Array;
  }
  const flows = new Map<string, { stream: number; src: string; sport: number; dst: string; dport: number; segs: Segment[] }>();
  for (const [frame, stream, src4, src6, sport, dst4, dst6, dport, seq, data] of tcpRows) {
    const bytes = payload(data!);
    if (!bytes) continue;
    const key = [stream, src4 || src6, sport, dst4 || dst6, dport].join(' ');
    let flow = flows.get(key);
    if (!flow) {
      flow = { stream: Number(stream), src: src4! || src6!, sport: Number(sport), dst: dst4! || dst6!, dport: Number(dport), segs: [] };
      flows.set(key, flow);
    }
    flow.segs.push({ seq: Number(seq), frame: Number(frame), data: bytes });
  }
  const ordered = [...flows.values()].sort((a, b) => a.stream - b.stream || a.sport - b.sport);
  for (const { stream, src, sport, dst, dport, segs } of ordered) {
    const proto = protoForPorts(sport, dport, asapPorts, enrpPorts);
    const flow = `tcp stream ${stream} ${src}:${sport} -> ${dst}:${dport}`;
    segs.sort((a, b) => a.seq - b.seq || a.frame - b.frame);
    const base = segs[0]!.seq;
    const chunks: Uint8Array[] = [];
    const owner: number[] = []; // frame of every byte
    let length = 0;
    let gapFrame: number | undefined;
    for (const { seq, frame, data } of segs) {
      const pos = seq - base;
      if (pos > length) {
        gapFrame = frame;
        break;
      }
      if (pos + data.length > length) {
        const part = data.subarray(length - pos);
        chunks.push(part);
        for (let i = 0; i < part.length; i++) owner.push(frame);
        length += part.length;
      }
    }
    const buf = Buffer.concat(chunks);
    let off = 0;
    let k = 0;
    while (off < buf.length) {
      if (buf.length - off < 4) {
        notes.push(`${flow}: ${buf.length - off} byte(s) left at the end of the capture, not a whole message header`);
        break;
      }
      const mlen = buf.readUInt16BE(off + 2);
      const total = mlen + ((4 - (mlen % 4)) % 4);
      k++;
      if (mlen < 4) {
        const mm = newMessage(`${flow} msg ${k} (frame ${owner[off]})`, label(proto), buf.subarray(off));
        mm.errors.push(`framing: message length field ${mlen} < 4; cannot find the next message, rest of stream (${buf.length - off} bytes) not checked`);
        msgs.push(mm);
        break;
      }
      if (off + total > buf.length) {
        notes.push(`${flow}: last message (length ${mlen}) incomplete in the capture (${buf.length - off} bytes present) - not checked`);
        break;
      }
      const frames = [...new Set(owner.slice(off, off + total))].sort((a, b) => a - b);
      const fr = frames.length === 1 ? `frame ${frames[0]}` : `frames ${frames[0]}-${frames[frames.length - 1]}`;
      msgs.push(newMessage(`${flow} msg ${k} (${fr})`, label(proto), Uint8Array.from(buf.subarray(off, off + total))));
      off += total;
    }
    if (gapFrame !== undefined) notes.push(`${flow}: bytes missing from the capture before frame ${gapFrame}; the rest of this direction was not checked`);
  }

  // UDP: one message per datagram.
  const udpRows = await tsharkFields(file, `${anyPort('udp.port')} && udp.length > 8`, [
    'frame.number',
    'ip.src',
    'ipv6.src',
    'udp.srcport',
    'ip.dst',
    'ipv6.dst',
    'udp.dstport',
    'udp.payload',
  ]);
  for (const [frame, src4, src6, sport, dst4, dst6, dport, data] of udpRows) {
    const bytes = payload(data!);
    if (!bytes) continue;
    const proto = protoForPorts(Number(sport), Number(dport), asapPorts, enrpPorts);
    msgs.push(newMessage(`frame ${frame} udp ${src4 || src6}:${sport} -> ${dst4 || dst6}:${dport}`, label(proto), bytes));
  }

  // SCTP: one message per whole DATA chunk with PPID 11/12 (or on the ports).
  const sctpRows = await tsharkFields(
    file,
    `sctp.data_payload_proto_id == ${ASAP_PPID} || sctp.data_payload_proto_id == ${ENRP_PPID} || ${anyPort('sctp.port')}`,
    ['frame.number', 'sctp.srcport', 'sctp.dstport', 'sctp.data_payload_proto_id', 'sctp.data_b_bit', 'sctp.data_e_bit', 'data.data'],
  );
  const list = (s: string): string[] => (s ? s.split(',') : []);
  for (const [frame, sport, dport, ppidText, bText, eText, dataText] of sctpRows) {
    const ppids = list(ppidText!);
    const bbits = list(bText!);
    const ebits = list(eText!);
    const datas = list(dataText!);
    ppids.forEach((ppid, i) => {
      const set = (bit: string | undefined): boolean => bit === '1' || bit === 'True';
      const proto =
        ppid === String(ASAP_PPID) ? 'asap' : ppid === String(ENRP_PPID) ? 'enrp' : protoForPorts(Number(sport), Number(dport), asapPorts, enrpPorts);
      if (proto === undefined) return;
      if (!set(bbits[i]) || !set(ebits[i]) || i >= datas.length) {
        notes.push(`frame ${frame} sctp chunk ${i + 1}: fragmented or not extractable - not checked`);
        return;
      }
      const bytes = payload(datas[i]!);
      if (bytes) msgs.push(newMessage(`frame ${frame} sctp ${sport} -> ${dport} chunk ${i + 1} (PPID ${ppid})`, proto, bytes));
    });
  }
  return msgs;
}
