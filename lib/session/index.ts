/**
 * The RSerPool session layer (RFC 5351 section 3, RFC 5352 cookies and
 * business cards): a PU talks to one PE of a pool over an application
 * protocol and fails over by itself, handing the next PE the last cookie.
 */
export type * from './types.js';
export { openSession } from './session.js';
export { createSessionServer } from './server.js';
export { peUrl, userTransportOf } from './util.js';
export { SessionFrameType, DataFlags, MAX_CHUNK_SIZE, encodeDataFrames, encodeHeartbeat, decodeSessionFrame, type SessionFrame } from './frames.js';
export * from './errors.js';
