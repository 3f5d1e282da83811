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
export { AnnounceError } from './errors.js';
