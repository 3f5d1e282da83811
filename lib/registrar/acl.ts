/**
 * Who may do what (RFC 5355 5.1-5.3): an allow-list of rules, each naming
 * identities (globs over the name a TLS handshake proved) or anonymous peers,
 * the roles they hold, and for `pe`/`pu` the pool handles they may use.
 * Anything no rule allows is refused.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { InvalidOptionError } from '../errors.js';
import type { PeerIdentity } from '../transport/index.js';

export type AclRole = 'pe' | 'pu' | 'registrar';
const ROLES: readonly AclRole[] = ['pe', 'pu', 'registrar'];

export interface AclRuleInit {
  /** Glob (`*`, `?`) over the peer's proved identity name; or `anonymous: true` for peers that proved none. */
  identity?: string;
  anonymous?: boolean;
  roles: AclRole[];
  /** Globs over the pool handle (as text); required for `pe` and `pu`. */
  handles?: string[];
  /** `registrar`: the ENRP server ids this identity may speak as (numbers or "0x..." strings); absent: any one at a time. */
  serverIds?: (number | string)[];
}

export interface AclInit {
  rules: AclRuleInit[];
}

interface Rule {
  identity: RegExp | 'anonymous';
  roles: ReadonlySet<AclRole>;
  handles: RegExp[];
  serverIds: ReadonlySet<number> | undefined;
}

export interface Acl {
  /** Whether the peer may act in `role` (for `pe`/`pu`, on `handle`; for `registrar`, as `serverId` when given). */
  allows(identity: PeerIdentity | undefined, role: AclRole, handle?: Uint8Array, serverId?: number): boolean;
}

function glob(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 's');
}

const handleText = (h: Uint8Array): string => Buffer.from(h).toString('latin1');

function fail(where: string, why: string): never {
  throw new InvalidOptionError(`acl: ${where}: ${why}`);
}

/** Checks a parsed policy and compiles it; errors name the rule and field. */
export function createAcl(init: unknown): Acl {
  if (typeof init !== 'object' || init === null || !Array.isArray((init as AclInit).rules)) fail('top level', 'expected { rules: [...] }');
  for (const k of Object.keys(init)) if (k !== 'rules') fail('top level', `unknown key '${k}'`);
  const rules: Rule[] = (init as AclInit).rules.map((raw, i) => {
    const where = `rule ${i + 1}`;
    if (typeof raw !== 'object' || raw === null) fail(where, 'expected an object');
    for (const k of Object.keys(raw)) if (!['identity', 'anonymous', 'roles', 'handles', 'serverIds'].includes(k)) fail(where, `unknown key '${k}'`);
    const { identity, anonymous, roles, handles, serverIds } = raw as AclRuleInit;
    if ((identity === undefined) === (anonymous !== true)) fail(where, "give 'identity' (a glob) or 'anonymous: true', not both");
    if (identity !== undefined && (typeof identity !== 'string' || identity.length === 0)) fail(where, "'identity' is a non-empty string");
    if (!Array.isArray(roles) || roles.length === 0) fail(where, `'roles' lists some of ${ROLES.join(', ')}`);
    for (const r of roles) if (!ROLES.includes(r)) fail(where, `unknown role '${String(r)}' (${ROLES.join(', ')})`);
    if (anonymous === true && roles.includes('registrar')) fail(where, 'a registrar must prove its identity');
    const needsHandles = roles.some((r) => r !== 'registrar');
    if (needsHandles && (!Array.isArray(handles) || handles.length === 0)) fail(where, "'handles' (globs) is required for roles pe and pu");
    if (handles !== undefined && (!Array.isArray(handles) || handles.some((h) => typeof h !== 'string'))) fail(where, "'handles' is a list of strings");
    let ids: Set<number> | undefined;
    if (serverIds !== undefined) {
      if (!Array.isArray(serverIds) || !roles.includes('registrar')) fail(where, "'serverIds' is a list, for the registrar role");
      ids = new Set(
        serverIds.map((v) => {
          const n = typeof v === 'number' ? v : /^(0x[0-9a-f]{1,8}|\d{1,10})$/i.test(v) ? Number(v) : Number.NaN;
          if (!Number.isInteger(n) || n < 1 || n > 0xffffffff) fail(where, `server id '${String(v)}' is not a 32-bit non-zero number`);
          return n;
        }),
      );
    }
    return { identity: anonymous === true ? 'anonymous' : glob(identity!), roles: new Set(roles), handles: (handles ?? []).map(glob), serverIds: ids };
  });
  return {
    allows(identity, role, handle, serverId) {
      const text = handle === undefined ? undefined : handleText(handle);
      return rules.some(
        (r) =>
          r.roles.has(role) &&
          (r.identity === 'anonymous' ? identity === undefined : identity !== undefined && r.identity.test(identity.name)) &&
          (role === 'registrar'
            ? serverId === undefined || r.serverIds === undefined || r.serverIds.has(serverId >>> 0)
            : text !== undefined && r.handles.some((h) => h.test(text))),
      );
    },
  };
}

/** Reads a policy file: JSON, or YAML for .yaml/.yml. */
export function loadAcl(file: string): Acl {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidOptionError(`acl: cannot read ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new InvalidOptionError(`acl: ${file}: ${(err as Error).message}`);
  }
  try {
    return createAcl(parsed);
  } catch (err) {
    throw new InvalidOptionError(`${(err as Error).message} (in ${file})`);
  }
}
