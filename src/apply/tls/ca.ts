import { createHash, createPrivateKey, generateKeyPair, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import ipaddr from 'ipaddr.js';
import forge from 'node-forge';
import { writeFileAtomic } from '../files.js';
import { withFileLock } from './lock.js';
import { shellQuote } from '../../util/shell.js';
import { isPermissionError, readTlsFile, TlsError } from './tlsError.js';

/** mkcert's CA: RSA 3072, 10 years. https://github.com/FiloSottile/mkcert/blob/master/cert.go (newCA) */
export const CA_KEY_BITS = 3072;
export const CA_VALIDITY_YEARS = 10;
/** mkcert writes the CA key read-only for its owner. */
export const CA_KEY_MODE = 0o400;
export const CERT_MODE = 0o644;

/**
 * What a CA that lo creates may vouch for (X.509 nameConstraints, critical): the private IPv4 ranges (lo's
 * networks: 10.125.<slot>.0/24, the shared 10.125.200.0/24, and any custom /24 a spec gives) and lo's own
 * host names. No public address and no other DNS name (docker.io, quay.io, a corporate host) can be
 * certified by it, even with its key: TLS clients refuse such a chain.
 */
export const CA_PERMITTED_IP_RANGES = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'] as const;
/** BUILD_HOSTNAME and CACHE_HOSTNAME of src/spec/constants.ts (not imported: that module loads the schema). */
export const CA_PERMITTED_DNS = ['lok8s.local', 'lok8s.cache'] as const;
const NAME_CONSTRAINTS_OID = '2.5.29.30';

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

export interface RsaKey {
  keyPem: string;
  key: forge.pki.rsa.PrivateKey;
}

/**
 * New RSA key pair: Node's native generator, asynchronous (it runs on libuv's thread pool, so the CA's and every
 * certificate's keys are generated in parallel, off the main thread), returned as PKCS#8 PEM (what mkcert
 * writes) and a forge key.
 */
export function generateRsaKey(bits: number): Promise<RsaKey> {
  return new Promise((resolve, reject) =>
    generateKeyPair(
      'rsa',
      { modulusLength: bits, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } },
      (err, _publicKey, privateKey) => {
        if (err) reject(err);
        else resolve({ keyPem: privateKey, key: forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey });
      },
    ),
  );
}

/** A certificate's key (ECDSA P-256): its PKCS#8 PEM and its SubjectPublicKeyInfo DER. */
export interface LeafKey {
  keyPem: string;
  spkiDer: Buffer;
}

/**
 * New ECDSA P-256 key pair (what `mkcert -ecdsa` gives certificates): about a millisecond, where an RSA 2048 key
 * takes ~0.15 s of CPU. Every client in lo's path accepts it: containerd and Docker (Go), registry:2 (Go),
 * curl (OpenSSL), Node (test/e2e/tls.test.ts, registryTls.test.ts).
 */
export function generateEcKey(): Promise<LeafKey> {
  return new Promise((resolve, reject) =>
    generateKeyPair(
      'ec',
      {
        namedCurve: 'prime256v1',
        publicKeyEncoding: { type: 'spki', format: 'der' },
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      },
      (err, spkiDer, keyPem) => {
        if (err) reject(err);
        else resolve({ keyPem, spkiDer });
      },
    ),
  );
}

/** forge's fromDer takes an options object (lib/asn1.js); @types/node-forge declares only `strict?: boolean`. */
const fromDer = forge.asn1.fromDer as unknown as (
  bytes: forge.util.ByteStringBuffer,
  options: { strict?: boolean; parseAllBytes?: boolean; decodeBitStrings?: boolean },
) => forge.asn1.Asn1;

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's bytes, as a raw byte string. */
export function subjectKeyId(spkiDer: Buffer): string {
  // decodeBitStrings off: by default forge parses a BIT STRING's bytes as ASN.1 when they happen to be valid,
  // which an EC point 04 3f … is (an OCTET STRING of 63 bytes), about one P-256 key in 256.
  const spki = fromDer(forge.util.createBuffer(spkiDer.toString('binary')), { decodeBitStrings: false });
  const bits = (spki.value as forge.asn1.Asn1[])[1]!.value as string; // first byte: unused bits (0)
  return createHash('sha1')
    .update(Buffer.from(bits.slice(1), 'binary'))
    .digest('binary');
}

const nativeKeys = new WeakMap<forge.pki.rsa.PrivateKey, KeyObject>();

/**
 * cert.sign(key, sha256) with Node's native RSA (forge's JavaScript RSA takes ~0.2 s per signature with a
 * 3072-bit CA key). PKCS#1 v1.5 signatures are deterministic: the same bytes forge would write.
 * `spkiDer`: the certificate's public key when forge cannot hold it (ECDSA): it replaces the placeholder
 * cert.publicKey in the TBSCertificate before signing.
 */
export function signCertificate(cert: forge.pki.Certificate, key: forge.pki.rsa.PrivateKey, spkiDer?: Buffer): void {
  let native = nativeKeys.get(key);
  if (!native) {
    native = createPrivateKey(forge.pki.privateKeyToPem(key));
    nativeKeys.set(key, native);
  }
  cert.md = forge.md.sha256.create();
  cert.signatureOid = cert.siginfo.algorithmOid = forge.pki.oids.sha256WithRSAEncryption!;
  // getTBSCertificate is forge's own (x509.js) but missing from @types/node-forge.
  cert.tbsCertificate = (forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate(cert);
  // TBSCertificate: version, serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ...
  if (spkiDer)
    (cert.tbsCertificate.value as forge.asn1.Asn1[])[6] = forge.asn1.fromDer(forge.util.createBuffer(spkiDer.toString('binary')));
  const tbs = Buffer.from(forge.asn1.toDer(cert.tbsCertificate).getBytes(), 'binary');
  cert.signature = sign('sha256', tbs, native).toString('binary');
}

function addYears(d: Date, years: number): Date {
  const r = new Date(d.getTime());
  r.setUTCFullYear(r.getUTCFullYear() + years);
  return r;
}

/**
 * The nameConstraints extension (RFC 5280 4.2.1.10), critical, with permitted subtrees only. node-forge
 * reads it but cannot write it, so the DER is built with its asn1 module: GeneralSubtree { base
 * GeneralName } with iPAddress [7] (address then mask, 8 bytes) and dNSName [2].
 */
export function nameConstraintsExtension(
  ipRanges: readonly string[],
  dnsNames: readonly string[],
): {
  id: string;
  name: string;
  critical: true;
  value: string;
} {
  const A = forge.asn1;
  const subtree = (base: forge.asn1.Asn1): forge.asn1.Asn1 => A.create(A.Class.UNIVERSAL, A.Type.SEQUENCE, true, [base]);
  const ipBase = (cidr: string): forge.asn1.Asn1 => {
    const [addr, prefix] = ipaddr.IPv4.parseCIDR(cidr);
    const mask = ipaddr.IPv4.subnetMaskFromPrefixLength(prefix).toByteArray();
    return A.create(A.Class.CONTEXT_SPECIFIC, 7, false, String.fromCharCode(...addr.toByteArray(), ...mask));
  };
  const dnsBase = (name: string): forge.asn1.Asn1 => A.create(A.Class.CONTEXT_SPECIFIC, 2, false, name);
  const permitted = A.create(A.Class.CONTEXT_SPECIFIC, 0, true, [
    ...ipRanges.map((c) => subtree(ipBase(c))),
    ...dnsNames.map((d) => subtree(dnsBase(d))),
  ]);
  const value = A.create(A.Class.UNIVERSAL, A.Type.SEQUENCE, true, [permitted]);
  return { id: NAME_CONSTRAINTS_OID, name: 'nameConstraints', critical: true, value: A.toDer(value).getBytes() };
}

/** What a CA may certify: null when it has no nameConstraints (e.g. an mkcert CA: it can vouch for any name). */
export interface CaScope {
  ipRanges: string[];
  dns: string[];
  /** Excluded subtrees or other name forms lo does not interpret (still enforced by TLS clients). */
  other: boolean;
}

export function caScope(cert: forge.pki.Certificate): CaScope | null {
  const ext = cert.extensions.find((e: { id?: string }) => e.id === NAME_CONSTRAINTS_OID) as
    { permittedSubtrees?: Array<{ type: number; value: string }>; excludedSubtrees?: unknown[] } | undefined;
  if (!ext) return null;
  const scope: CaScope = { ipRanges: [], dns: [], other: (ext.excludedSubtrees?.length ?? 0) > 0 };
  for (const t of ext.permittedSubtrees ?? []) {
    if (t.type === 2) scope.dns.push(t.value);
    else if (t.type === 7 && t.value.length === 8) {
      const b = [...t.value].map((c) => c.charCodeAt(0));
      const prefix = ipaddr.IPv4.parse(b.slice(4).join('.')).prefixLengthFromSubnetMask();
      if (prefix === null) scope.other = true;
      else scope.ipRanges.push(`${b.slice(0, 4).join('.')}/${prefix}`);
    } else scope.other = true;
  }
  return scope;
}

/** The names (IPs and DNS names) of `names` that a CA with `scope` cannot certify; [] when unconstrained. */
export function namesOutsideScope(scope: CaScope | null, names: readonly string[]): string[] {
  if (!scope) return [];
  return names.filter((n) => {
    if (ipaddr.IPv4.isValidFourPartDecimal(n)) {
      const ip = ipaddr.IPv4.parse(n);
      return !scope.ipRanges.some((r) => ip.match(ipaddr.IPv4.parseCIDR(r)));
    }
    if (ipaddr.isValid(n)) return true; // IPv6: lo permits none
    const name = n.toLowerCase();
    return !scope.dns.some((d) => name === d.toLowerCase() || name.endsWith(`.${d.toLowerCase()}`));
  });
}

/**
 * Creates a CA in memory with mkcert's subject and extensions, plus name constraints limiting it to what lo
 * serves (CA_PERMITTED_IP_RANGES, CA_PERMITTED_DNS). Pure apart from randomness.
 */
export async function createCa(opts: { now: Date; identity: string; key?: Promise<RsaKey> }): Promise<{
  certPem: string;
  keyPem: string;
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
}> {
  const { keyPem, key } = await (opts.key ?? generateRsaKey(CA_KEY_BITS));
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
    nameConstraintsExtension(CA_PERMITTED_IP_RANGES, CA_PERMITTED_DNS),
  ]);
  signCertificate(cert, key);
  // Re-parsed so the returned certificate carries the decoded constraints, like one read from disk.
  const certPem = forge.pki.certificateToPem(cert);
  return { certPem, keyPem, cert: forge.pki.certificateFromPem(certPem), key };
}

const FRESH_CA_HINT = (f: CaFiles): string =>
  `fix or restore the file; or move rootCA.pem and rootCA-key.pem out of ${f.caRoot} (lo then creates a new CA: run \`lo trust\` again), or point $CAROOT at another CA directory`;

function readCaFile(path: string): Promise<string | null> {
  return readTlsFile(path, {
    permission: `give your user read access to ${path} (mkcert writes it for its owner only), or run lo as that user`,
    other: `make ${path} a readable PEM file`,
  });
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
      const ca = await createCa({ now, identity: opts.identity ?? defaultIdentity() });
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
