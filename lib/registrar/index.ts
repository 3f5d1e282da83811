export type * from './types.js';
export { createRegistrar, toParameter } from './registrar.js';
export { RegistrarStateError, AnnounceError } from './errors.js';
export {
  listenAnnounces,
  DEFAULT_ANNOUNCE_GROUP,
  DEFAULT_ANNOUNCE_PORT,
  DEFAULT_ANNOUNCE_INTERFACE,
  type AnnounceListener,
  type AnnounceListenInit,
  type AnnounceListenerEvents,
  type RegistrarAnnouncement,
} from './announce.js';
export { createRegistrarNode, type RegistrarNode, type RegistrarNodeInit, type RegistrarNodeStatus } from './node.js';
