export type * from './types.js';
export { createRegistrar } from './registrar.js';
export { RegistrarStateError } from './errors.js';
export { createRegistrarNode, type RegistrarNode, type RegistrarNodeInit, type RegistrarNodeStatus } from './node.js';
export { createAcl, loadAcl, type Acl, type AclInit, type AclRole, type AclRuleInit } from './acl.js';
