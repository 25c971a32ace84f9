import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { shownParameter } from './url-parameter.js';

/** The TLS parameters of DATABASE_URL: Prisma's (sslmode, sslaccept, sslcert, sslidentity, sslpassword) and libpq's. */
export const SSL_PARAMETERS = [
  'sslmode',
  'sslaccept',
  'sslrootcert',
  'sslcert',
  'sslkey',
  'sslidentity',
  'sslpassword',
];

/**
 * node-postgres' `ssl` for Prisma's sslmode and sslaccept, with libpq's meanings for verify-ca and
 * verify-full; undefined when the URL says nothing of TLS (node-postgres' default: no TLS unless PGSSLMODE).
 */
export function tlsOptions(
  parameters: Map<string, string>,
  problems: string[],
): false | ConnectionOptions | undefined {
  const mode = parameters.get('sslmode');
  const given = SSL_PARAMETERS.filter((name) => name !== 'sslmode' && parameters.has(name));
  if (mode === undefined) {
    if (given.length)
      problems.push(`${given.join(', ')} without sslmode: write sslmode=require, verify-ca or verify-full`);
    return undefined;
  }
  if (mode === 'disable') {
    if (given.length) problems.push(`${given.join(', ')} with sslmode=disable: TLS is off, remove them`);
    return false;
  }
  if (mode === 'prefer') {
    problems.push(
      'sslmode=prefer: node-postgres cannot fall back to plaintext when the server offers no TLS; write sslmode=require (TLS) or sslmode=disable',
    );
    return undefined;
  }
  if (mode !== 'require' && mode !== 'verify-ca' && mode !== 'verify-full') {
    problems.push(`${shownParameter('sslmode', mode)}: disable, require, verify-ca or verify-full`);
    return undefined;
  }
  const ssl: ConnectionOptions = {};
  const file = (name: string) => certificateFile(name, parameters.get(name), problems);
  const ca = file('sslrootcert');
  if (ca) ssl.ca = ca;
  const accept = parameters.get('sslaccept');
  if (accept !== undefined && mode !== 'require')
    problems.push(`sslaccept with sslmode=${mode}: sslaccept applies to sslmode=require only`);
  else if (accept !== undefined && accept !== 'strict' && accept !== 'accept_invalid_certs')
    problems.push(`${shownParameter('sslaccept', accept)}: strict or accept_invalid_certs`);
  if (mode === 'verify-ca' && !ca)
    problems.push('sslmode=verify-ca needs sslrootcert=<CA file>: or write verify-full');
  if (accept === 'accept_invalid_certs' && ca)
    problems.push(
      'sslrootcert with sslaccept=accept_invalid_certs: the CA would never be checked; remove one',
    );
  // require: Prisma's default sslaccept (accept_invalid_certs) checks nothing; libpq's require with a root
  // certificate checks the chain (verify-ca); sslaccept=strict checks the chain and the host name.
  const checksChain = mode !== 'require' || accept === 'strict' || (accept === undefined && Boolean(ca));
  const checksHost = mode === 'verify-full' || accept === 'strict';
  ssl.rejectUnauthorized = checksChain;
  if (checksChain && !checksHost) ssl.checkServerIdentity = () => undefined;
  clientIdentity(parameters, ssl, file, problems);
  return ssl;
}

/** The client's certificate: sslcert + sslkey (PEM), or sslidentity (PKCS#12), each with sslpassword. */
function clientIdentity(
  parameters: Map<string, string>,
  ssl: ConnectionOptions,
  file: (name: string) => Buffer | undefined,
  problems: string[],
): void {
  const [cert, key, identity] = ['sslcert', 'sslkey', 'sslidentity'].map((name) => parameters.has(name));
  if (cert && !key)
    problems.push(
      'sslcert without sslkey: Prisma reads sslcert as the server CA, node-postgres as the client certificate; write sslrootcert=<CA file> for the CA, or sslcert with sslkey for a client certificate',
    );
  if (key && !cert) problems.push('sslkey without sslcert: write both for a client certificate');
  if (identity && (cert || key)) problems.push('sslidentity with sslcert/sslkey: write one client identity');
  if (parameters.has('sslpassword') && !key && !identity)
    problems.push('sslpassword without sslkey or sslidentity: it unlocks one of them');
  if (cert && key) {
    ssl.cert = file('sslcert');
    // Not enumerable, as node-postgres does with its own: an inspected or logged config does not show it.
    Object.defineProperty(ssl, 'key', { value: file('sslkey'), enumerable: false });
  }
  if (identity) ssl.pfx = file('sslidentity');
  const passphrase = parameters.get('sslpassword');
  if (passphrase !== undefined) ssl.passphrase = passphrase;
}

/** A certificate file's bytes; relative paths are refused (Prisma reads them from the schema's folder). */
function certificateFile(name: string, path: string | undefined, problems: string[]): Buffer | undefined {
  if (path === undefined) return undefined;
  if (!isAbsolute(path)) {
    problems.push(
      `${shownParameter(name, path)}: write an absolute path (Prisma reads a relative one from the schema's folder, node-postgres from the working directory)`,
    );
    return undefined;
  }
  try {
    return readFileSync(path);
  } catch (error) {
    problems.push(
      `${shownParameter(name, path)}: cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
    return undefined;
  }
}
