import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import forge from 'node-forge';
import { readIfExists, writeFileAtomic } from '../files.js';
import { withFileLock } from './lock.js';
import { shellQuote } from '../../util/shell.js';
import { isPermissionError, TlsError } from './tlsError.js';

/** mkcert's CA: RSA 3072, 10 years. https://github.com/FiloSottile/mkcert/blob/master/cert.go (newCA) */
export const CA_KEY_BITS = 3072;
export const CA_VALIDITY_YEARS = 10;
/** mkcert writes the CA key read-only for its owner. */
export const CA_KEY_MODE = 0o400;
export const CERT_MODE = 0o644;

export interface CaFiles {
  caRoot: string;
  certPath: string;
  keyPath: string;
}

export interface CertificateAuthority extends CaFiles {
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
  /** rootCA.pem exactly as on disk. */
  certPem: string;
  /** SHA-256 of the certificate's DER, lowercase hex. */
  fingerprint: string;
  /** True when this call created the CA. */
  created: boolean;
}

export interface CaOptions {
  now?: Date;
  /** `user@host` for the subject, like mkcert; defaults to the current user and host name. */
  identity?: string;
}

/** SHA-256 of a certificate's DER encoding, lowercase hex (what `openssl x509 -fingerprint -sha256` shows, without colons). */
export function certFingerprint(cert: forge.pki.Certificate): string {
  const der = forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes();
  return createHash('sha256').update(Buffer.from(der, 'binary')).digest('hex');
}

/** mkcert's `user@host` string. */
export function defaultIdentity(): string {
  let user = 'user';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (some containers): a neutral name
  }
  return `${user}@${hostname()}`;
}

/** A positive random 128-bit serial number as forge's hex string. */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

/** New RSA key pair: Node's native generator (fast), returned as PKCS#8 PEM (what mkcert writes) and a forge key. */
export function generateRsaKey(bits: number): { keyPem: string; key: forge.pki.rsa.PrivateKey } {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { keyPem: privateKey, key: forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey };
}

function addYears(d: Date, years: number): Date {
  const r = new Date(d.getTime());
  r.setUTCFullYear(r.getUTCFullYear() + years);
  return r;
}

/** Creates a CA in memory with mkcert's subject and extensions. Pure apart from randomness. */
export function createCa(opts: { now: Date; identity: string }): {
  certPem: string;
  keyPem: string;
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
} {
  const { keyPem, key } = generateRsaKey(CA_KEY_BITS);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = new Date(opts.now.getTime());
  cert.validity.notAfter = addYears(opts.now, CA_VALIDITY_YEARS);
  const subject = [
    { name: 'organizationName', value: 'mkcert development CA' },
    // UTF8String as Go/mkcert writes it: `user@host` is not a valid PrintableString, and Go's x509 (containerd,
    // registry:2) rejects the certificate ("invalid RDNSequence: invalid PrintableString").
    { shortName: 'OU', value: opts.identity, valueTagClass: forge.asn1.Type.UTF8 as unknown as forge.asn1.Class },
    {
      name: 'commonName',
      value: `mkcert ${opts.identity}`.slice(0, 64),
      valueTagClass: forge.asn1.Type.UTF8 as unknown as forge.asn1.Class,
    },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(key, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem, cert, key };
}

const FRESH_CA_HINT = (f: CaFiles): string =>
  `fix or restore the file; or move rootCA.pem and rootCA-key.pem out of ${f.caRoot} (lo then creates a new CA: run \`lo trust\` again), or point $CAROOT at another CA directory`;

async function readCaFile(path: string): Promise<string | null> {
  try {
    return await readIfExists(path);
  } catch (err) {
    throw new TlsError(`cannot read ${path}: ${(err as Error).message}`, {
      file: path,
      cause: err,
      hint: isPermissionError(err)
        ? `give your user read access to ${path} (mkcert writes it for its owner only), or run lo as that user`
        : `make ${path} a readable PEM file`,
    });
  }
}

/**
 * Parses and checks a CA read from disk. Every failure is a TlsError naming the file; nothing is written.
 * `key` (forge) is parsed lazily, on first use, since only (re)issuing needs it.
 */
export function parseCa(files: CaFiles, certPem: string, keyPem: string, now: Date): CertificateAuthority {
  let cert: forge.pki.Certificate;
  try {
    cert = forge.pki.certificateFromPem(certPem);
  } catch (err) {
    const why = (err as Error).message;
    const rsa = /OID is not RSA/i.test(why) ? " (lo signs with RSA CAs such as mkcert's; this one has another key type)" : '';
    throw new TlsError(`${files.certPath} is not a usable PEM certificate${rsa}: ${why}`, {
      file: files.certPath,
      cause: err,
      hint: FRESH_CA_HINT(files),
    });
  }
  // Node's native crypto checks the key (fast); forge parses it only when a certificate must be signed.
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(keyPem);
    if (keyObject.asymmetricKeyType !== 'rsa') throw new Error(`it is a ${keyObject.asymmetricKeyType ?? 'non-RSA'} key`);
  } catch (err) {
    throw new TlsError(`${files.keyPath} is not an unencrypted RSA private key in PEM form: ${(err as Error).message}`, {
      file: files.keyPath,
      cause: err,
      hint: FRESH_CA_HINT(files),
    });
  }
  const bc = cert.getExtension('basicConstraints') as { cA?: boolean } | undefined;
  const ku = cert.getExtension('keyUsage') as { keyCertSign?: boolean } | undefined;
  if (!bc?.cA || (ku && !ku.keyCertSign)) {
    throw new TlsError(
      `${files.certPath} is not a CA certificate (${!bc?.cA ? 'basicConstraints CA:TRUE is missing' : 'keyUsage lacks keyCertSign'}); it cannot sign registry certificates`,
      { file: files.certPath, hint: FRESH_CA_HINT(files) },
    );
  }
  let matches = false;
  try {
    matches = new X509Certificate(certPem).checkPrivateKey(keyObject);
  } catch {
    matches = false;
  }
  if (!matches) {
    throw new TlsError(`${files.keyPath} does not match ${files.certPath} (the key belongs to another certificate)`, {
      file: files.keyPath,
      hint: `put the key that belongs to ${files.certPath} back into ${files.keyPath}; or ${FRESH_CA_HINT(files)}`,
    });
  }
  if (now.getTime() > cert.validity.notAfter.getTime()) {
    throw new TlsError(`${files.certPath}: the CA expired on ${cert.validity.notAfter.toISOString()}`, {
      file: files.certPath,
      hint: FRESH_CA_HINT(files),
    });
  }
  if (now.getTime() < cert.validity.notBefore.getTime()) {
    throw new TlsError(`${files.certPath}: the CA is not valid before ${cert.validity.notBefore.toISOString()} (is the clock right?)`, {
      file: files.certPath,
      hint: 'check the system clock',
    });
  }
  let key: forge.pki.rsa.PrivateKey | undefined;
  const ca = { ...files, cert, certPem, fingerprint: certFingerprint(cert), created: false } as CertificateAuthority;
  Object.defineProperty(ca, 'key', {
    enumerable: false,
    get: () => (key ??= forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey),
  });
  return ca;
}

/** Loads the CA if it exists (null when neither file exists). A half-present CA is an error, never overwritten. */
export async function loadCa(files: CaFiles, now: Date = new Date()): Promise<CertificateAuthority | null> {
  const [certPem, keyPem] = await Promise.all([readCaFile(files.certPath), readCaFile(files.keyPath)]);
  if (certPem === null && keyPem === null) return null;
  if (certPem === null || keyPem === null) {
    const [present, missing] = certPem === null ? [files.keyPath, files.certPath] : [files.certPath, files.keyPath];
    throw new TlsError(`incomplete CA in ${files.caRoot}: ${present} exists but ${missing} is missing`, {
      file: missing,
      hint: `restore ${missing}; or move ${present} away so lo creates a new CA (then run \`lo trust\` again)`,
    });
  }
  return parseCa(files, certPem, keyPem, now);
}

function unwritable(dir: string, err: unknown): TlsError {
  return new TlsError(`cannot create the CA in ${dir}: ${(err as Error).message}`, {
    file: dir,
    cause: err,
    hint: `set $CAROOT to a directory you can write (e.g. export CAROOT=$HOME/.local/share/mkcert), or fix the permissions: sudo chown -R $(id -un) ${shellQuote(dir)}`,
  });
}

/**
 * An existing mkcert-layout CA is used as it is; otherwise a new one is created in the same layout
 * (so `mkcert -install` and `lo trust` both trust it). Creation holds a lock so concurrent runs create one CA.
 */
export async function loadOrCreateCa(files: CaFiles, opts: CaOptions = {}): Promise<CertificateAuthority> {
  const now = opts.now ?? new Date();
  const existing = await loadCa(files, now);
  if (existing) return existing;
  try {
    await mkdir(files.caRoot, { recursive: true, mode: 0o755 });
    return await withFileLock(files.certPath, async () => {
      const again = await loadCa(files, now);
      if (again) return again;
      const ca = createCa({ now, identity: opts.identity ?? defaultIdentity() });
      // Key first: a crash between the two renames leaves "key without cert", which loadCa reports.
      await writeFileAtomic(files.keyPath, ca.keyPem, CA_KEY_MODE);
      await writeFileAtomic(files.certPath, ca.certPem, CERT_MODE);
      return { ...files, cert: ca.cert, key: ca.key, certPem: ca.certPem, fingerprint: certFingerprint(ca.cert), created: true };
    });
  } catch (err) {
    if (err instanceof TlsError) throw err;
    if (isPermissionError(err)) throw unwritable(files.caRoot, err);
    throw err;
  }
}

/** mkcert's unique name for a CA ("mkcert development CA <serial>"); it names the trust-store file. */
export function caUniqueName(cert: forge.pki.Certificate): string {
  return `mkcert development CA ${BigInt(`0x${cert.serialNumber}`).toString(10)}`;
}
