export type {
  AuditRepair,
  EnrpCounters,
  EnrpMulticastInit,
  EnrpServer,
  EnrpServerComponents,
  EnrpServerEvents,
  EnrpServerInit,
  EnrpStatus,
  EnrpTimers,
  PeerInfo,
  PeerState,
  Refusal,
} from './types.js';
export { createEnrpServer, DEFAULT_ENRP_TIMERS, DEFAULT_MAX_ENRP_MESSAGE_BYTES } from './server.js';
export { DEFAULT_ENRP_MULTICAST } from './multicast.js';
export * from './errors.js';
