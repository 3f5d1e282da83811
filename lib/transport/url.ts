import { isIP } from 'node:net';
import { BadUrlError } from './errors.js';
import type { TransportScheme, TransportUrl } from './types.js';

const SCHEMES: readonly TransportScheme[] = ['tcp', 'tls', 'memory', 'sctp', 'sctp+udp'];
const URL_RE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/;
const HOST_PORT_RE = /^(\[[^\]]*\]|[^:[\]]*)(?::(\d*))?$/;
const NAME_RE = /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/;

export function isTransportScheme(s: string): s is TransportScheme {
  return (SCHEMES as readonly string[]).includes(s);
}

/**
 * Parses `tcp://127.0.0.1:3863`, `tcp://[::1]:3863`, `tls://host:port`,
 * `memory://name[:port]`, `sctp://host:port`, `sctp+udp://host:port`.
 * All but memory:// need a port (0 = any when listening).
 * Throws BadUrlError saying what is wrong.
 */
export function parseTransportUrl(input: TransportUrl | string): TransportUrl {
  if (typeof input !== 'string') return input;
  const m = URL_RE.exec(input.trim());
  if (!m) throw new BadUrlError(input, "expected '<scheme>://<host>[:<port>]'");
  const scheme = m[1]!.toLowerCase();
  if (!isTransportScheme(scheme)) throw new BadUrlError(input, `unknown scheme '${scheme}' (have: ${SCHEMES.join(', ')})`);
  let rest = m[2]!;
  if (rest.endsWith('/')) rest = rest.slice(0, -1);
  if (/[/?#@]/.test(rest)) throw new BadUrlError(input, 'a transport URL has no path, query, fragment or user info');
  const hp = HOST_PORT_RE.exec(rest);
  if (!hp) throw new BadUrlError(input, 'malformed host or port (IPv6 addresses go in brackets)');
  let host = hp[1]!;
  const portText = hp[2];
  if (host === '' || host === '[]') throw new BadUrlError(input, 'missing host');
  const bracketed = host.startsWith('[');
  if (bracketed) {
    host = host.slice(1, -1);
    if (isIP(host) !== 6) throw new BadUrlError(input, `'${host}' is not an IPv6 address`);
    if (scheme === 'memory') throw new BadUrlError(input, 'a memory endpoint is a name, not an address');
  } else if (isIP(host) === 0 && !NAME_RE.test(host)) {
    throw new BadUrlError(input, `'${host}' is neither an IP address nor a host name`);
  }
  let port = 0;
  if (portText !== undefined) {
    if (portText === '') throw new BadUrlError(input, 'empty port');
    port = Number(portText);
    if (port > 65_535) throw new BadUrlError(input, `port ${portText} is out of range`);
  } else if (scheme !== 'memory') {
    throw new BadUrlError(input, `${scheme}:// needs a port (0 for any when listening)`);
  }
  return makeTransportUrl(scheme, host, port);
}

export function makeTransportUrl(scheme: TransportScheme, host: string, port: number): TransportUrl {
  const h = isIP(host) === 6 ? `[${host}]` : host;
  const href = scheme === 'memory' && port === 0 ? `memory://${h}` : `${scheme}://${h}:${port}`;
  return Object.freeze({ scheme, host, port, href });
}
