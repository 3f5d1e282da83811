import { InvalidOptionError } from '../errors.js';
import { UnsupportedSchemeError } from './errors.js';
import type { MemoryNetwork, MemoryTransportInit } from './memory.js';
import { createTcpTransport, type TcpTransportInit } from './tcp.js';
import { createTlsTransport, type TlsTransportInit } from './tls.js';
import type { SctpScheme, SctpTransportInit } from './sctp.js';
import { isTransportScheme, parseTransportUrl } from './url.js';
import type { Connection, ConnectOptions, Listener, ListenOptions, MessageTransport, TransportComponents, TransportScheme, TransportUrl } from './types.js';

/** Which transports to offer, each with its own options; an absent key means "not offered" (tcp is on by default). */
export interface TransportsInit {
  tcp?: TcpTransportInit | false;
  /** sctp:// on raw IPv4 (experimental): needs root and raw-socket, else its connect/listen fail with SctpUnavailableError. */
  sctp?: SctpTransportInit;
  /** sctp+udp:// (experimental): SCTP in UDP, needs nothing. */
  'sctp+udp'?: SctpTransportInit;
  tls?: TlsTransportInit;
  memory?: MemoryTransportInit & { network: MemoryNetwork; name: string };
}

/** Picks the transport for a URL's scheme; connect/listen dispatch on it. */
export interface TransportSet {
  readonly schemes: readonly TransportScheme[];
  transportFor(url: TransportUrl | string): MessageTransport;
  connect(url: TransportUrl | string, opts?: ConnectOptions): Promise<Connection>;
  listen(url: TransportUrl | string, opts?: ListenOptions): Promise<Listener>;
}

/** Loads the SCTP code (and the `sctp` package) at the first connect or listen: a user of TCP alone never loads it. */
function lazySctpTransport(scheme: SctpScheme, init: SctpTransportInit, components: TransportComponents): MessageTransport {
  let loading: Promise<MessageTransport> | undefined;
  const load = (): Promise<MessageTransport> =>
    (loading ??= import('./sctp.js').then((m) => (scheme === 'sctp' ? m.createSctpTransport(init, components) : m.createSctpUdpTransport(init, components))));
  return {
    scheme,
    connect: async (url, opts) => (await load()).connect(url, opts),
    listen: async (url, opts) => (await load()).listen(url, opts),
  };
}

/** One transport for a URL or scheme; tls needs `init.tls`, memory needs `init.memory`. */
export function createTransport(
  urlOrScheme: TransportUrl | TransportScheme | string,
  init: TransportsInit = {},
  components: TransportComponents = {},
): MessageTransport {
  const scheme = typeof urlOrScheme === 'string' && isTransportScheme(urlOrScheme) ? urlOrScheme : parseTransportUrl(urlOrScheme).scheme;
  switch (scheme) {
    case 'tcp':
      if (init.tcp === false) throw new UnsupportedSchemeError('tcp');
      return createTcpTransport(init.tcp ?? {}, components);
    case 'sctp':
    case 'sctp+udp':
      return lazySctpTransport(scheme, init[scheme] ?? {}, components);
    case 'tls':
      if (!init.tls) throw new InvalidOptionError('tls:// needs tls options (certificates or a PSK)');
      return createTlsTransport(init.tls, components);
    case 'memory': {
      if (!init.memory) throw new InvalidOptionError('memory:// needs a network and a host name');
      const { network, name, ...rest } = init.memory;
      return network.transport(name, rest, components);
    }
    default: {
      const never: never = scheme;
      throw new UnsupportedSchemeError(String(never));
    }
  }
}

export function createTransports(init: TransportsInit = {}, components: TransportComponents = {}): TransportSet {
  const byScheme = new Map<TransportScheme, MessageTransport>();
  if (init.tcp !== false) byScheme.set('tcp', createTransport('tcp', init, components));
  for (const sctp of ['sctp', 'sctp+udp'] as const) {
    if (init[sctp]) byScheme.set(sctp, createTransport(sctp, init, components));
  }
  if (init.tls) byScheme.set('tls', createTransport('tls', init, components));
  if (init.memory) byScheme.set('memory', createTransport('memory', init, components));
  const transportFor = (url: TransportUrl | string): MessageTransport => {
    const scheme = parseTransportUrl(url).scheme;
    const t = byScheme.get(scheme);
    if (!t) throw new UnsupportedSchemeError(scheme);
    return t;
  };
  return {
    schemes: [...byScheme.keys()],
    transportFor,
    connect: (url, opts) => transportFor(url).connect(url, opts),
    listen: (url, opts) => transportFor(url).listen(url, opts),
  };
}
