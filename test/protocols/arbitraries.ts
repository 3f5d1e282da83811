/** fast-check arbitraries for RFC 5354 parameters and ASAP/ENRP messages (shared with the fuzz harness). */
import fc from 'fast-check';
import { AsapMessageType, type AsapMessage } from '../../protocols/asap/index.js';
import { EnrpMessageType, HandleUpdateAction, type EnrpMessage } from '../../protocols/enrp/index.js';
import {
  PolicyType,
  TransportUse,
  formatIpv4,
  formatIpv6,
  isKnownParameterType,
  policyParameterLength,
  type ErrorCauseEntry,
  type MemberSelectionPolicy,
  type PoolElementParameter,
  type ServerInformation,
  type TransportAddress,
  type UnknownParameter,
} from '../../protocols/parameters/index.js';

export const u32 = fc.nat({ max: 0xffffffff });
export const u16 = fc.nat({ max: 0xffff });
const smallBytes = (max = 24): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength: max });

/** Canonical text, as the decoder writes it. */
export const ipv4 = fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => formatIpv4(b));
export const ipv6 = fc
  .oneof(
    fc.uint8Array({ minLength: 16, maxLength: 16 }),
    // Sparse addresses exercise "::" compression.
    fc.array(fc.constantFrom(0, 0, 0, 1, 0xff), { minLength: 16, maxLength: 16 }).map((a) => Uint8Array.from(a)),
  )
  .map((b) => formatIpv6(b));
export const ipAddress = fc.oneof(ipv4, ipv6);

export const transport: fc.Arbitrary<TransportAddress> = fc.oneof(
  fc.record({
    protocol: fc.constant('sctp' as const),
    port: u16,
    addresses: fc.array(ipAddress, { minLength: 1, maxLength: 4 }),
    transportUse: fc.constantFrom(TransportUse.DataOnly, TransportUse.DataPlusControl),
  }),
  fc.record({
    protocol: fc.constant('tcp' as const),
    port: u16,
    addresses: fc.tuple(ipAddress).map((a) => [...a]),
    transportUse: fc.constantFrom(TransportUse.DataOnly, TransportUse.DataPlusControl),
  }),
  fc.record({
    protocol: fc.constantFrom('udp' as const, 'udp-lite' as const),
    port: u16,
    addresses: fc.tuple(ipAddress).map((a) => [...a]),
    transportUse: fc.constant(TransportUse.DataOnly),
  }),
  fc.record({
    protocol: fc.constant('dccp' as const),
    port: u16,
    addresses: fc.tuple(ipAddress).map((a) => [...a]),
    transportUse: fc.constant(TransportUse.DataOnly),
    serviceCode: u32,
  }),
);

const P = PolicyType;
export const policy: fc.Arbitrary<MemberSelectionPolicy> = fc.oneof<fc.Arbitrary<MemberSelectionPolicy>[]>(
  fc.record({ type: fc.constant(P.RoundRobin) }),
  fc.record({ type: fc.constant(P.Random) }),
  fc.record({ type: fc.constant(P.WeightedRoundRobin), weight: u32 }),
  fc.record({ type: fc.constant(P.WeightedRandom), weight: u32 }),
  fc.record({ type: fc.constant(P.ConsistentHash), weight: u32 }),
  fc.record({ type: fc.constant(P.Priority), priority: u32 }),
  fc.record({ type: fc.constant(P.LeastUsed), load: u32 }),
  fc.record({ type: fc.constant(P.RandomizedLeastUsed), load: u32 }),
  fc.record({ type: fc.constant(P.LeastConnections), connections: u32 }),
  fc.record({ type: fc.constant(P.LeastUsedDegradation), load: u32, loadDegradation: u32 }),
  fc.record({ type: fc.constant(P.PriorityLeastUsed), load: u32, loadDegradation: u32 }),
  fc.record({ type: fc.constant(P.PriorityLeastUsedDegradation), load: u32, loadDegradation: u32 }),
  fc.record({ type: fc.constant(P.WeightedLeastConnections), weight: u32, connections: u32 }),
  fc.record({ type: fc.constant(P.WeightedResponseTime), weight: u32, responseTimeUs: u32 }),
  fc.record({ type: fc.constant(P.WeightedRandomDpf), weight: u32, weightDpf: u32, distance: u32 }),
  fc.record({ type: fc.constant(P.LeastUsedDpf), load: u32, loadDpf: u32, distance: u32 }),
  fc.record({
    type: u32.filter((t) => policyParameterLength(t) === undefined),
    unknown: fc.constant(true as const),
    raw: smallBytes(),
  }),
);

export const poolElement: fc.Arbitrary<PoolElementParameter> = fc
  .record({
    identifier: u32,
    homeRegistrarId: u32,
    registrationLife: u32,
    userTransport: transport,
    policy,
    asapTransport: fc.option(transport, { nil: undefined }),
  })
  .map(({ asapTransport, ...e }) => (asapTransport ? { ...e, asapTransport } : e));

export const serverInformation: fc.Arbitrary<ServerInformation> = fc.record({ registrarId: u32, transport });

export const errorCause: fc.Arbitrary<ErrorCauseEntry> = fc.record({ code: u16, info: smallBytes(16) });
export const operationError = fc.array(errorCause, { maxLength: 3 });

export const unknownParameter: fc.Arbitrary<UnknownParameter> = fc.record({
  type: u16.filter((t) => !isKnownParameterType(t)),
  raw: smallBytes(),
});

export const handle = fc.uint8Array({ minLength: 1, maxLength: 32 });

/** Optional base fields: flags (any byte) and unknown parameters, omitted when absent. */
const base = fc.record({ flags: fc.option(fc.nat({ max: 0xff }), { nil: undefined }), unknown: fc.array(unknownParameter, { maxLength: 2 }) });
function withBase<T extends object>(arb: fc.Arbitrary<T>): fc.Arbitrary<T> {
  return fc.tuple(arb, base).map(([m, b]) => ({
    ...m,
    ...(b.flags ? { flags: b.flags } : {}),
    ...(b.unknown.length > 0 ? { unknown: b.unknown } : {}),
  }));
}
function opt<K extends string, V>(key: K, arb: fc.Arbitrary<V>): fc.Arbitrary<Partial<Record<K, V>>> {
  return fc.option(arb, { nil: undefined }).map((v) => (v === undefined ? {} : ({ [key]: v } as Partial<Record<K, V>>)));
}

const idMsg = <T extends number>(type: T) => fc.record({ type: fc.constant(type), handle, identifier: u32 });

export const asapMessage: fc.Arbitrary<AsapMessage> = withBase<AsapMessage>(
  fc.oneof(
    fc.record({ type: fc.constant(AsapMessageType.Registration), handle, element: poolElement }),
    idMsg(AsapMessageType.Deregistration),
    fc.tuple(idMsg(AsapMessageType.RegistrationResponse), opt('error', operationError)).map(([m, o]) => ({ ...m, ...o })),
    fc.tuple(idMsg(AsapMessageType.DeregistrationResponse), opt('error', operationError)).map(([m, o]) => ({ ...m, ...o })),
    fc.tuple(fc.record({ type: fc.constant(AsapMessageType.HandleResolution), handle }), opt('items', u32)).map(([m, o]) => ({ ...m, ...o })),
    fc
      .tuple(
        fc.record({ type: fc.constant(AsapMessageType.HandleResolutionResponse), handle, elements: fc.array(poolElement, { maxLength: 3 }) }),
        opt('policy', policy),
        opt('error', operationError),
      )
      .map(([m, p, e]) => ({ ...m, ...p, ...e })),
    fc
      .tuple(fc.record({ type: fc.constant(AsapMessageType.EndpointKeepAlive), serverId: u32, handle }), opt('identifier', u32))
      .map(([m, o]) => ({ ...m, ...o })),
    idMsg(AsapMessageType.EndpointKeepAliveAck),
    idMsg(AsapMessageType.EndpointUnreachable),
    fc.record({ type: fc.constant(AsapMessageType.ServerAnnounce), serverId: u32, transports: fc.array(transport, { maxLength: 3 }) }),
    fc.record({ type: fc.constantFrom(AsapMessageType.Cookie, AsapMessageType.CookieEcho), cookie: smallBytes(40) }),
    fc.record({ type: fc.constant(AsapMessageType.BusinessCard), handle, elements: fc.array(poolElement, { maxLength: 3 }) }),
    fc.record({ type: fc.constant(AsapMessageType.Error), error: operationError }),
  ),
);

const ids = { senderServerId: u32, receiverServerId: u32 };
const ownerDigest = fc.uint8Array({ minLength: 32, maxLength: 32 });
export const enrpMessage: fc.Arbitrary<EnrpMessage> = withBase<EnrpMessage>(
  fc.oneof(
    fc
      .tuple(
        fc.record({ type: fc.constant(EnrpMessageType.Presence), ...ids, checksum: u16 }),
        opt('server', serverInformation),
        opt('unreachable', fc.record({ identifier: u32, handle })),
      )
      .map(([m, o, r]) => ({ ...m, ...o, ...r })),
    fc.record({ type: fc.constantFrom(EnrpMessageType.HandleTableRequest, EnrpMessageType.ListRequest), ...ids }),
    fc.record({
      type: fc.constant(EnrpMessageType.HandleTableResponse),
      ...ids,
      pools: fc.array(
        fc
          .tuple(handle, fc.array(fc.tuple(poolElement, fc.option(ownerDigest, { nil: undefined })), { maxLength: 2 }))
          // Owner identities (rserpool's extension) ride after their PE; a pool has them only when one of its PEs does.
          .map(([h, pes]) => ({
            handle: h,
            elements: pes.map(([e]) => e),
            ...(pes.some(([, o]) => o) ? { owners: pes.map(([, o]) => o) } : {}),
          })),
        { maxLength: 3 },
      ),
    }),
    fc
      .tuple(
        fc.record({
          type: fc.constant(EnrpMessageType.HandleUpdate),
          ...ids,
          action: fc.constantFrom(HandleUpdateAction.AddOrUpdate, HandleUpdateAction.Delete),
          handle,
          element: poolElement,
        }),
        opt('ownerIdentity', ownerDigest),
      )
      .map(([m, o]) => ({ ...m, ...o })),
    fc.record({ type: fc.constant(EnrpMessageType.ListResponse), ...ids, servers: fc.array(serverInformation, { maxLength: 3 }) }),
    fc.record({
      type: fc.constantFrom(EnrpMessageType.InitTakeover, EnrpMessageType.InitTakeoverAck, EnrpMessageType.TakeoverServer),
      ...ids,
      targetServerId: u32,
    }),
    fc.record({ type: fc.constant(EnrpMessageType.Error), ...ids, error: operationError }),
  ),
);
