import { describe, expect, it } from 'vitest';
import { createMemoryNetwork } from '../../lib/transport/memory.js';
import { createTransport, createTransports } from '../../lib/transport/registry.js';
import { parseTransportUrl } from '../../lib/transport/url.js';

describe('parseTransportUrl', () => {
  it.each([
    ['tcp://127.0.0.1:3863', { scheme: 'tcp', host: '127.0.0.1', port: 3863, href: 'tcp://127.0.0.1:3863' }],
    ['tcp://[::1]:3863', { scheme: 'tcp', host: '::1', port: 3863, href: 'tcp://[::1]:3863' }],
    ['TLS://registrar.example:0', { scheme: 'tls', host: 'registrar.example', port: 0, href: 'tls://registrar.example:0' }],
    ['memory://registrar-a', { scheme: 'memory', host: 'registrar-a', port: 0, href: 'memory://registrar-a' }],
    ['memory://pe-1:3863/', { scheme: 'memory', host: 'pe-1', port: 3863, href: 'memory://pe-1:3863' }],
  ])('parses %s', (text, want) => {
    expect(parseTransportUrl(text)).toEqual(want);
  });

  it.each([
    ['127.0.0.1:3863', 'expected'],
    ['udp://127.0.0.1:1', "unknown scheme 'udp'"],
    ['tcp://127.0.0.1', 'needs a port'],
    ['tcp://127.0.0.1:65536', 'out of range'],
    ['tcp://127.0.0.1:', 'empty port'],
    ['tcp://::1:3863', 'malformed'],
    ['tcp://[127.0.0.1]:1', 'not an IPv6'],
    ['tcp://:3863', 'missing host'],
    ['tcp://a b:1', 'neither an IP'],
    ['tcp://h:1/path', 'no path'],
    ['memory://[::1]', 'a name'],
  ])('refuses %s with a BadUrlError (%s)', (text, why) => {
    expect(() => parseTransportUrl(text)).toThrow(expect.objectContaining({ code: 'RSP_ERR_BAD_URL', message: expect.stringContaining(why) }));
  });
});

describe('transport registry', () => {
  it('picks the transport for a URL and refuses schemes it was not given', async () => {
    const network = createMemoryNetwork();
    const set = createTransports({ memory: { network, name: 'pe-1' } });
    expect(set.schemes).toEqual(['tcp', 'memory']);
    expect(set.transportFor('tcp://127.0.0.1:1').scheme).toBe('tcp');
    expect(set.transportFor('memory://x').scheme).toBe('memory');
    expect(() => set.transportFor('tls://127.0.0.1:1')).toThrow(expect.objectContaining({ code: 'RSP_ERR_UNSUPPORTED_SCHEME' }));
    const l = await set.listen('memory://pe-1:9');
    expect(l.address.href).toBe('memory://pe-1:9');
    await l.close();
  });

  it('needs options for tls and memory', () => {
    expect(createTransport('tcp://127.0.0.1:1').scheme).toBe('tcp');
    expect(() => createTransport('tls')).toThrow(expect.objectContaining({ code: 'RSP_ERR_INVALID_OPTION' }));
    expect(() => createTransport('memory://x')).toThrow(expect.objectContaining({ code: 'RSP_ERR_INVALID_OPTION' }));
  });
});
