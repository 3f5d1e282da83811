export type {
  Handlespace,
  HandlespaceEvents,
  HandlespaceInit,
  PoolElementEntry,
  PoolHandleLike,
  PoolInfo,
  RegisterOptions,
  RegisterResult,
  RemoveReason,
  ResolveOptions,
} from './types.js';
export {
  createHandlespace,
  restoreHandlespace,
  poolHandleKey,
  createSeededRandom,
  HandlespaceSnapshotError,
  INFINITE_LIFE,
  MAX_RESOLVE_ITEMS,
} from './handlespace.js';
export { finishChecksum, handleWordSum, peChecksumTerm } from './checksum.js';
export { toParameter } from './parameter.js';
export { policyName } from './policies/index.js';
export { clientKeyHash } from './policies/consistent-hash.js';
