/**
 * The hand-computed reference messages in this folder (see each file's
 * header for its source). A file holds comment lines, a `# protocol: asap|enrp`
 * line and exactly one message in hex.
 */
import { readFileSync } from 'node:fs';

export type VectorName = 'asap-registration' | 'asap-handle-resolution' | 'enrp-presence';
export const VECTOR_NAMES: readonly VectorName[] = ['asap-registration', 'asap-handle-resolution', 'enrp-presence'];

export interface Vector {
  readonly name: VectorName;
  readonly proto: 'asap' | 'enrp';
  readonly bytes: Uint8Array;
}

export function vector(name: VectorName): Vector {
  const text = readFileSync(new URL(`${name}.hex`, import.meta.url), 'utf8');
  const lines = text.split('\n').map((l) => l.trim());
  const proto = lines.map((l) => /^#\s*protocol:\s*(asap|enrp)$/.exec(l)?.[1]).find((p) => p !== undefined);
  const hex = lines.filter((l) => l !== '' && !l.startsWith('#'));
  if (proto !== 'asap' && proto !== 'enrp') throw new Error(`${name}.hex names no protocol`);
  if (hex.length !== 1 || !/^([0-9a-f]{2})+$/i.test(hex[0]!)) throw new Error(`${name}.hex must hold one hex message`);
  return { name, proto, bytes: Uint8Array.from(Buffer.from(hex[0]!, 'hex')) };
}
