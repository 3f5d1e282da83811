/**
 * Test certificates, made at test time with the openssl CLI: a CA, a server
 * certificate for 127.0.0.1 / ::1 / localhost signed by it, a client
 * certificate signed by it, and an untrusted self-signed certificate (valid
 * SANs, unknown issuer). Short-lived P-256 keys; nothing is checked in.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface KeyPair {
  /** PEM */
  cert: string;
  /** PEM */
  key: string;
}

export interface TestCerts {
  dir: string;
  ca: KeyPair;
  server: KeyPair;
  client: KeyPair;
  untrusted: KeyPair;
  /** Deletes the directory. */
  remove(): void;
}

export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export function generateTestCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'rserpool-certs-'));
  const run = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const sans = 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost';
  run(
    'req',
    '-x509',
    ...EC,
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=rserpool test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  const issue = (name: string, cn: string, ext: string): void => {
    writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
    run('req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    run(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    );
  };
  issue('server', '127.0.0.1', `${sans}\nextendedKeyUsage=serverAuth`);
  issue('client', 'pe-1', 'extendedKeyUsage=clientAuth');
  run(
    'req',
    '-x509',
    ...EC,
    '-keyout',
    'untrusted.key',
    '-out',
    'untrusted.crt',
    '-days',
    '2',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    sans,
    '-addext',
    'extendedKeyUsage=serverAuth,clientAuth',
  );
  const pair = (name: string): KeyPair => ({
    cert: readFileSync(join(dir, `${name}.crt`), 'utf8'),
    key: readFileSync(join(dir, `${name}.key`), 'utf8'),
  });
  return {
    dir,
    ca: pair('ca'),
    server: pair('server'),
    client: pair('client'),
    untrusted: pair('untrusted'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
