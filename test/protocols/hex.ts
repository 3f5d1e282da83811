/** Test helpers: hex <-> bytes, spaces allowed in hex for readability. */
export function fromHex(hex: string): Uint8Array {
  const clean = hex.replace(/\s+/g, '');
  if (clean.length % 2 !== 0) throw new Error(`odd hex length: ${hex}`);
  return Uint8Array.from(clean.match(/../g) ?? [], (b) => parseInt(b, 16));
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A TLV in hex: 16-bit type, 16-bit length (header + value, without padding), value, zero padding. */
export function tlv(type: number, valueHex: string): string {
  const value = valueHex.replace(/\s+/g, '');
  const length = 4 + value.length / 2;
  const pad = '00'.repeat((4 - (length % 4)) % 4);
  return type.toString(16).padStart(4, '0') + length.toString(16).padStart(4, '0') + value + pad;
}

/** A message in hex: type, flags, length counting the padded body. */
export function msg(type: number, flags: number, bodyHex: string): string {
  const body = bodyHex.replace(/\s+/g, '');
  const length = 4 + body.length / 2;
  return type.toString(16).padStart(2, '0') + flags.toString(16).padStart(2, '0') + length.toString(16).padStart(4, '0') + body;
}
