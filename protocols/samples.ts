import { encodeAsapMessage } from './asap/codec.js';
import { AsapFlags, AsapMessageType, type AsapMessage } from './asap/types.js';
import { encodeEnrpMessage } from './enrp/codec.js';
import { EnrpFlags, EnrpMessageType, HandleUpdateAction, type EnrpMessage } from './enrp/types.js';
import { encodeParameter, poolHandleFromString } from './parameters/codec.js';
import {
  ErrorCause,
  LOAD_MAX,
  PolicyType,
  TransportUse,
  type MemberSelectionPolicy,
  type PoolElementParameter,
  type ServerInformation,
  type TransportAddress,
} from './parameters/types.js';

export interface WireSample {
  proto: 'asap' | 'enrp';
  name: string;
  bytes: Uint8Array;
  /** Carries an rserpool extension parameter (0x8f01, 0x8f02): RFC 5354 peers skip it, Wireshark shows it as unknown. */
  extension: boolean;
}

const tcp = (address: string, port: number, transportUse: TransportUse = TransportUse.DataOnly): TransportAddress => ({
  protocol: 'tcp',
  port,
  addresses: [address],
  transportUse,
});

function element(identifier: number, policy: MemberSelectionPolicy, userTransport?: TransportAddress): PoolElementParameter {
  return {
    identifier,
    homeRegistrarId: 0x11111111,
    registrationLife: 30_000,
    userTransport: userTransport ?? tcp('192.0.2.10', 8000 + (identifier & 0xff)),
    policy,
    asapTransport: tcp('192.0.2.10', 50_000, TransportUse.DataPlusControl),
  };
}

/** Every RFC 5356 policy and the RSPLIB ones Wireshark decodes (never rserpool's private types). */
const policies: Array<[string, MemberSelectionPolicy]> = [
  ['round robin', { type: PolicyType.RoundRobin }],
  ['weighted round robin', { type: PolicyType.WeightedRoundRobin, weight: 3 }],
  ['random', { type: PolicyType.Random }],
  ['weighted random', { type: PolicyType.WeightedRandom, weight: 7 }],
  ['priority', { type: PolicyType.Priority, priority: 2 }],
  ['least used', { type: PolicyType.LeastUsed, load: Math.floor(LOAD_MAX / 4) }],
  ['least used with degradation', { type: PolicyType.LeastUsedDegradation, load: Math.floor(LOAD_MAX / 2), loadDegradation: 0x01000000 }],
  ['priority least used', { type: PolicyType.PriorityLeastUsed, load: 0x20000000, loadDegradation: 0x00100000 }],
  ['randomized least used', { type: PolicyType.RandomizedLeastUsed, load: 0x40000000 }],
  ['priority least used with degradation', { type: PolicyType.PriorityLeastUsedDegradation, load: 0x30000000, loadDegradation: 0x00200000 }],
  ['weighted random DPF', { type: PolicyType.WeightedRandomDpf, weight: 5, weightDpf: 0x00010000, distance: 40 }],
  ['least used DPF', { type: PolicyType.LeastUsedDpf, load: 0x10000000, loadDpf: 0x00020000, distance: 25 }],
];

const server = (registrarId: number, transport: TransportAddress): ServerInformation => ({ registrarId, transport });

/**
 * A representative of every ASAP and ENRP message type, encoded by the real
 * encoders, for `rserpool wire samples` and the Wireshark check.
 */
export function wireSamples(): WireSample[] {
  const handle = poolHandleFromString('EchoPool');
  const tftp = poolHandleFromString('TftpPool');
  const sctpMultiHomed: TransportAddress = {
    protocol: 'sctp',
    port: 3863,
    addresses: ['192.0.2.20', '198.51.100.20', '2001:db8::20'],
    transportUse: TransportUse.DataPlusControl,
  };
  const ipv6Element: PoolElementParameter = {
    identifier: 0x6666,
    homeRegistrarId: 0x22222222,
    registrationLife: 0xffffffff,
    userTransport: { protocol: 'udp', port: 69, addresses: ['2001:db8:0:1::69'], transportUse: TransportUse.DataOnly },
    policy: { type: PolicyType.LeastUsed, load: 0x08000000 },
    asapTransport: { protocol: 'sctp', port: 3863, addresses: ['2001:db8:0:1::69', '192.0.2.69'], transportUse: TransportUse.DataPlusControl },
  };
  const unrecognized = encodeParameter({ kind: 'unknown', parameter: { type: 0x4077, raw: new Uint8Array([1, 2, 3]) } });

  const asap: Array<[string, AsapMessage]> = [
    ['registration (tcp, round robin)', { type: AsapMessageType.Registration, handle, element: element(0x12345678, { type: PolicyType.RoundRobin }) }],
    ['registration (ipv6, udp, sctp multi-homed asap transport)', { type: AsapMessageType.Registration, handle: tftp, element: ipv6Element }],
    [
      'registration (dccp and udp-lite transports)',
      {
        type: AsapMessageType.Registration,
        handle,
        element: {
          identifier: 0xdcc9,
          homeRegistrarId: 0,
          registrationLife: 60_000,
          userTransport: { protocol: 'dccp', port: 5004, addresses: ['198.51.100.7'], transportUse: TransportUse.DataOnly, serviceCode: 0x52545020 },
          policy: { type: PolicyType.Priority, priority: 1 },
          asapTransport: { protocol: 'udp-lite', port: 5005, addresses: ['198.51.100.7'], transportUse: TransportUse.DataOnly },
        },
      },
    ],
    ['deregistration', { type: AsapMessageType.Deregistration, handle, identifier: 0x12345678 }],
    ['registration response (accepted)', { type: AsapMessageType.RegistrationResponse, handle, identifier: 0x12345678 }],
    [
      'registration response (rejected, operation error)',
      {
        type: AsapMessageType.RegistrationResponse,
        flags: AsapFlags.Reject,
        handle,
        identifier: 0x12345678,
        error: [
          { code: ErrorCause.InconsistentPoolingPolicy, info: encodeParameter({ kind: 'policy', policy: { type: PolicyType.Random } }) },
          { code: ErrorCause.LackOfResources, info: new Uint8Array(0) },
        ],
      },
    ],
    ['deregistration response', { type: AsapMessageType.DeregistrationResponse, handle, identifier: 0x12345678 }],
    ['handle resolution', { type: AsapMessageType.HandleResolution, handle }],
    ['handle resolution (with handle resolution option)', { type: AsapMessageType.HandleResolution, handle, items: 3 }],
    [
      'handle resolution response (every standard policy)',
      {
        type: AsapMessageType.HandleResolutionResponse,
        handle,
        policy: { type: PolicyType.RoundRobin },
        elements: policies.map(([, policy], i) => element(0x1000 + i, policy)),
      },
    ],
    [
      'handle resolution response (unknown pool handle)',
      { type: AsapMessageType.HandleResolutionResponse, handle: tftp, elements: [], error: [{ code: ErrorCause.UnknownPoolHandle, info: new Uint8Array(0) }] },
    ],
    ['endpoint keep-alive (home)', { type: AsapMessageType.EndpointKeepAlive, flags: AsapFlags.Home, serverId: 0x11111111, handle, identifier: 0x12345678 }],
    ['endpoint keep-alive ack', { type: AsapMessageType.EndpointKeepAliveAck, handle, identifier: 0x12345678 }],
    ['endpoint unreachable', { type: AsapMessageType.EndpointUnreachable, handle, identifier: 0x12345678 }],
    [
      'server announce (tcp and multi-homed sctp)',
      { type: AsapMessageType.ServerAnnounce, serverId: 0x11111111, transports: [tcp('192.0.2.1', 3863, TransportUse.DataPlusControl), sctpMultiHomed] },
    ],
    ['cookie', { type: AsapMessageType.Cookie, cookie: new Uint8Array([0xa1, 0x63, 0x62, 0x6c, 0x6b, 0x19, 0x04, 0xd2, 0x00]) }],
    ['cookie echo', { type: AsapMessageType.CookieEcho, cookie: new Uint8Array([0xa1, 0x63, 0x62, 0x6c, 0x6b, 0x19, 0x04, 0xd2, 0x00]) }],
    [
      'business card',
      { type: AsapMessageType.BusinessCard, handle, elements: [element(0x12345678, { type: PolicyType.WeightedRoundRobin, weight: 2 }), ipv6Element] },
    ],
    [
      'error (unrecognized parameter, unrecognized message)',
      {
        type: AsapMessageType.Error,
        error: [
          { code: ErrorCause.UnrecognizedParameter, info: unrecognized },
          { code: ErrorCause.UnrecognizedMessage, info: encodeAsapMessage({ type: AsapMessageType.HandleResolution, handle }) },
        ],
      },
    ],
  ];

  const ids = { senderServerId: 0x11111111, receiverServerId: 0x22222222 };
  const owner = Uint8Array.from({ length: 32 }, (_, i) => i);
  const registrarA = server(0x11111111, tcp('127.0.0.1', 9901, TransportUse.DataPlusControl));
  const registrarB = server(0x22222222, { protocol: 'sctp', port: 9901, addresses: ['127.0.0.2', '::1'], transportUse: TransportUse.DataPlusControl });
  const enrp: Array<[string, EnrpMessage, extension?: boolean]> = [
    ['presence', { type: EnrpMessageType.Presence, ...ids, receiverServerId: 0, checksum: 0x1234, server: registrarA }],
    [
      'presence (with rserpool unreachable report)',
      { type: EnrpMessageType.Presence, ...ids, checksum: 0x1234, server: registrarA, unreachable: { identifier: 0x12345678, handle } },
      true,
    ],
    ['presence (reply required, sctp)', { type: EnrpMessageType.Presence, flags: EnrpFlags.ReplyRequired, ...ids, checksum: 0xfedc, server: registrarB }],
    ['handle table request (own children only)', { type: EnrpMessageType.HandleTableRequest, flags: EnrpFlags.OwnChildrenOnly, ...ids }],
    [
      'handle table response (two pools, more to send)',
      {
        type: EnrpMessageType.HandleTableResponse,
        flags: EnrpFlags.MoreToSend,
        ...ids,
        pools: [
          { handle, elements: [element(1, { type: PolicyType.RoundRobin }), element(2, { type: PolicyType.RoundRobin })] },
          { handle: tftp, elements: [ipv6Element] },
        ],
      },
    ],
    ['handle table response (rejected)', { type: EnrpMessageType.HandleTableResponse, flags: EnrpFlags.Reject, ...ids, pools: [] }],
    [
      'handle update (add)',
      {
        type: EnrpMessageType.HandleUpdate,
        ...ids,
        action: HandleUpdateAction.AddOrUpdate,
        handle,
        element: element(0x12345678, { type: PolicyType.WeightedRandom, weight: 4 }),
      },
    ],
    [
      'handle update (add, with rserpool PE owner identity)',
      {
        type: EnrpMessageType.HandleUpdate,
        ...ids,
        action: HandleUpdateAction.AddOrUpdate,
        handle,
        element: element(0x12345678, { type: PolicyType.RoundRobin }),
        ownerIdentity: owner,
      },
      true,
    ],
    [
      'handle table response (rserpool PE owner identities)',
      {
        type: EnrpMessageType.HandleTableResponse,
        ...ids,
        pools: [{ handle, elements: [element(1, { type: PolicyType.RoundRobin }), element(2, { type: PolicyType.RoundRobin })], owners: [undefined, owner] }],
      },
      true,
    ],
    ['handle update (delete)', { type: EnrpMessageType.HandleUpdate, ...ids, action: HandleUpdateAction.Delete, handle: tftp, element: ipv6Element }],
    ['list request', { type: EnrpMessageType.ListRequest, ...ids }],
    ['list response', { type: EnrpMessageType.ListResponse, ...ids, servers: [registrarA, registrarB] }],
    ['init takeover', { type: EnrpMessageType.InitTakeover, ...ids, receiverServerId: 0, targetServerId: 0x33333333 }],
    ['init takeover ack', { type: EnrpMessageType.InitTakeoverAck, ...ids, targetServerId: 0x33333333 }],
    ['takeover server', { type: EnrpMessageType.TakeoverServer, ...ids, receiverServerId: 0, targetServerId: 0x33333333 }],
    [
      'error (invalid values, security)',
      {
        type: EnrpMessageType.Error,
        ...ids,
        error: [
          { code: ErrorCause.InvalidValues, info: encodeParameter({ kind: 'identifier', identifier: 7 }) },
          { code: ErrorCause.RejectionDueToSecurityConsiderations, info: new Uint8Array(0) },
        ],
      },
    ],
  ];

  return [
    ...asap.map(([name, m]): WireSample => ({ proto: 'asap', name, bytes: encodeAsapMessage(m), extension: false })),
    ...enrp.map(([name, m, extension = false]): WireSample => ({ proto: 'enrp', name, bytes: encodeEnrpMessage(m), extension })),
  ];
}
