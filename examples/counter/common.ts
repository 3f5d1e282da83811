import { parseArgs as parseCliArgs } from 'node:util';
/**
 * The counter service's wire protocol and state cookie, shared by the PE
 * (server.ts) and the PU (client.ts).
 *
 * Request  (PU -> PE): CBOR { seq }          "increment, this is my request seq"
 * Reply    (PE -> PU): CBOR { seq, value }   the counter after that increment
 * Cookie   (PE -> PU, ASAP_COOKIE): CBOR [ state, hmac ] with state = CBOR { count, seq },
 *          hmac = HMAC-SHA256(secret, state). Every PE of the pool shares the secret,
 *          so any of them can check a cookie another one issued.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { decode, encode } from 'cbor-x';
import { PolicyType, type PoolElementParameter } from '../../protocols/parameters/types.js';
import { userTransportOf, type SessionResolver } from '../../lib/session/index.js';

export const DEFAULT_SECRET = 'counter-demo-secret';
export const POOL_HANDLE = 'counter';

export interface CounterState {
  count: number;
  /** The last request seq counted: a repeat of it is answered, not counted again. */
  seq: number;
}

const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export function encodeRequest(seq: number): Uint8Array {
  return encode({ seq });
}

export function decodeRequest(bytes: Uint8Array): { seq: number } | undefined {
  const v: unknown = safeDecode(bytes);
  if (typeof v === 'object' && v !== null && isUint((v as { seq?: unknown }).seq)) return { seq: (v as { seq: number }).seq };
  return undefined;
}

export function encodeReply(seq: number, value: number): Uint8Array {
  return encode({ seq, value });
}

export function decodeReply(bytes: Uint8Array): { seq: number; value: number } | undefined {
  const v: unknown = safeDecode(bytes);
  if (typeof v !== 'object' || v === null) return undefined;
  const { seq, value } = v as { seq?: unknown; value?: unknown };
  return isUint(seq) && isUint(value) ? { seq, value } : undefined;
}

function safeDecode(bytes: Uint8Array): unknown {
  try {
    return decode(bytes);
  } catch {
    return undefined;
  }
}

function mac(secret: string, state: Uint8Array): Uint8Array {
  return createHmac('sha256', secret).update(state).digest();
}

export function sealCookie(secret: string, state: CounterState): Uint8Array {
  const body = encode({ count: state.count, seq: state.seq });
  return encode([body, mac(secret, body)]);
}

/** The state in a cookie, or undefined when it is malformed or its HMAC does not match. */
export function openCookie(secret: string, cookie: Uint8Array): CounterState | undefined {
  const outer: unknown = safeDecode(cookie);
  if (!Array.isArray(outer) || outer.length !== 2) return undefined;
  const [body, tag] = outer as unknown[];
  if (!(body instanceof Uint8Array) || !(tag instanceof Uint8Array)) return undefined;
  const want = mac(secret, body);
  if (tag.length !== want.length || !timingSafeEqual(tag, want)) return undefined;
  const state: unknown = safeDecode(body);
  if (typeof state !== 'object' || state === null) return undefined;
  const { count, seq } = state as { count?: unknown; seq?: unknown };
  return isUint(count) && isUint(seq) ? { count, seq } : undefined;
}

/** A PE parameter for a PE URL (identifiers 1, 2, ... by position), for the static resolver. */
export function peOfUrl(url: string, identifier: number): PoolElementParameter {
  return {
    identifier,
    homeRegistrarId: 0,
    registrationLife: 0xffffffff,
    userTransport: userTransportOf(url),
    policy: { type: PolicyType.RoundRobin },
  };
}

/**
 * A resolver without a registrar: the PEs given, in order, minus those
 * reported unreachable (a PE reported stays out: fine for a demo).
 */
export function staticResolver(urls: readonly string[]): SessionResolver & { readonly down: ReadonlySet<number> } {
  const pes = urls.map((u, i) => peOfUrl(u, i + 1));
  const down = new Set<number>();
  return {
    down,
    async resolve() {
      return pes.filter((pe) => !down.has(pe.identifier));
    },
    async reportUnreachable(_handle, identifier) {
      down.add(identifier);
    },
  };
}

/** `--name value` / `--name=value` options, repeatable; an unknown option is an error. */
export function parseArgs(argv: readonly string[], names: readonly string[]): Map<string, string[]> {
  const { values } = parseCliArgs({
    args: [...argv],
    options: Object.fromEntries(names.map((n) => [n, { type: 'string' as const, multiple: true }])),
  });
  return new Map(Object.entries(values).map(([k, v]) => [k, v ?? []]));
}
