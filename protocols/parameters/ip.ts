/**
 * IP address text <-> bytes, pure (no node:net in protocols/). Parsing
 * accepts the usual forms; formatting is canonical (RFC 5952 for IPv6).
 */

/** Four bytes, or undefined when `text` is not a dotted-quad IPv4 address. */
export function parseIpv4(text: string): Uint8Array | undefined {
  const out = new Uint8Array(4);
  return parseIpv4Into(text, out, 0) ? out : undefined;
}

/** Parses into out[at..at+4); false when `text` is not a dotted quad. */
export function parseIpv4Into(text: string, out: Uint8Array, at: number): boolean {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      // No empty parts, no leading zeros (ambiguous octal), at most 255.
      if (digits === 0 || part > 3) return false;
      out[at + part] = value;
      part++;
      value = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && value === 0) return false;
      value = value * 10 + (c - 0x30);
      digits++;
      if (value > 255) return false;
    } else {
      return false;
    }
  }
  return part === 4;
}

export function formatIpv4(bytes: Uint8Array, at = 0): string {
  return `${bytes[at]}.${bytes[at + 1]}.${bytes[at + 2]}.${bytes[at + 3]}`;
}

/** Sixteen bytes, or undefined when `text` is not an IPv6 address (zone ids are refused). */
export function parseIpv6(text: string): Uint8Array | undefined {
  const out = new Uint8Array(16);
  const dc = text.indexOf('::');
  if (dc !== -1 && text.indexOf('::', dc + 1) !== -1) return undefined;
  const head = dc === -1 ? text : text.slice(0, dc);
  const tail = dc === -1 ? '' : text.slice(dc + 2);
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === '' ? [] : tail.split(':');
  const words: number[] = [];
  const parseGroups = (groups: string[], allowV4Last: boolean): number[] | undefined => {
    const res: number[] = [];
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (allowV4Last && i === groups.length - 1 && g.includes('.')) {
        const v4 = parseIpv4(g);
        if (!v4) return undefined;
        res.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      res.push(parseInt(g, 16));
    }
    return res;
  };
  const h = parseGroups(headGroups, dc === -1);
  const t = parseGroups(tailGroups, true);
  if (!h || !t) return undefined;
  if (dc === -1) {
    if (h.length !== 8) return undefined;
    words.push(...h);
  } else {
    const fill = 8 - h.length - t.length;
    if (fill < 1) return undefined;
    words.push(...h, ...new Array<number>(fill).fill(0), ...t);
  }
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i]! >> 8;
    out[2 * i + 1] = words[i]! & 0xff;
  }
  return out;
}

/** RFC 5952: lower case, no leading zeros, the longest (first) run of two or more zero groups as "::". */
export function formatIpv6(bytes: Uint8Array, at = 0): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((bytes[at + 2 * i]! << 8) | bytes[at + 2 * i + 1]!);
  // RFC 5952 section 5: IPv4-mapped addresses keep the dotted quad.
  if (words[0] === 0 && words[1] === 0 && words[2] === 0 && words[3] === 0 && words[4] === 0 && words[5] === 0xffff) {
    return `::ffff:${formatIpv4(bytes, at + 12)}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]): string => ws.map((w) => w.toString(16)).join(':');
  if (bestStart === -1) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}
