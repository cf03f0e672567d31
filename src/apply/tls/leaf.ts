import { chmod, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import {
  caScope,
  CERT_MODE,
  generateEcKey,
  namesOutsideScope,
  randomSerial,
  signCertificate,
  subjectKeyId,
  type CertificateAuthority,
  type LeafKey,
} from './ca.js';
import { writeFileAtomic } from '../files.js';
import { ExitCode } from '../../errors/loError.js';
import { withFileLock } from './lock.js';
import { isPermissionError, readTlsFile, TlsError } from './tlsError.js';

/** Well under the 825-day limit Apple and browsers enforce; the CA/B forum's 398-day rule with a day to spare. */
export const LEAF_VALIDITY_DAYS = 397;
/** Re-issue when a certificate expires within this many days. */
export const RENEW_BEFORE_DAYS = 30;
/** Certificates' keys: ECDSA P-256 (generateEcKey). Certificates lo wrote earlier with RSA 2048 keys are kept. */
export const LEAF_KEY_TYPE = 'ec';
export const LEAF_KEY_MODE = 0o600;
const DAY_MS = 86_400_000;

export interface LeafSpec {
  id: string;
  certPath: string;
  keyPath: string;
  /** IPs and DNS names; the certificate's SANs are exactly these. */
  names: string[];
}

export type LeafAction = 'created' | 'reissued' | 'unchanged';

export interface LeafResult {
  id: string;
  certPath: string;
  keyPath: string;
  fingerprint: string;
  action: LeafAction;
  /** Why it was (re)issued; absent when unchanged. */
  reason?: string;
}

/** IP SANs vs DNS SANs, as x509 needs them. */
export function splitNames(names: readonly string[]): { ips: string[]; dns: string[] } {
  return { ips: names.filter((n) => isIP(n) !== 0), dns: names.filter((n) => isIP(n) === 0) };
}

/**
 * The certificate's SANs (IPs and DNS names), sorted, read with Node's X509Certificate (forge reads RSA
 * certificates only). Node prints them as `DNS:a, IP Address:10.0.0.1`; any other kind is kept, marked, so a
 * certificate with one never equals a plan's names.
 */
export function certificateNames(cert: X509Certificate | string): string[] {
  const x509 = typeof cert === 'string' ? new X509Certificate(cert) : cert;
  if (!x509.subjectAltName) return [];
  return x509.subjectAltName
    .split(', ')
    .map((n) => (n.startsWith('DNS:') ? n.slice(4) : n.startsWith('IP Address:') ? n.slice(11) : `?${n}`))
    .sort();
}

/** SHA-256 of the certificate's DER, lowercase hex (certFingerprint's value, from Node's parse). */
export function x509Fingerprint(x509: X509Certificate): string {
  return x509.fingerprint256.replaceAll(':', '').toLowerCase();
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const x = [...new Set(a)].sort();
  const y = [...new Set(b)].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/**
 * Why an existing certificate must be re-issued, or null to keep it byte-identical. Pure.
 * Re-issue on: missing or unparsable files, key not matching, another SAN set, another CA (issuer or
 * signature), or expiry within RENEW_BEFORE_DAYS.
 */
export function reissueReason(
  existing: { certPem: string | null; keyPem: string | null },
  spec: LeafSpec,
  ca: Pick<CertificateAuthority, 'certPem'>,
  now: Date,
): string | null {
  if (existing.certPem === null || existing.keyPem === null) return 'missing';
  // Node's crypto only: RSA and ECDSA certificates alike, and a no-op run loads no forge.
  let x509: X509Certificate;
  let key: KeyObject;
  try {
    x509 = new X509Certificate(existing.certPem);
    key = createPrivateKey(existing.keyPem);
  } catch {
    return 'unreadable';
  }
  if (!x509.checkPrivateKey(key)) return 'key does not match certificate';
  if (!sameSet(certificateNames(x509), spec.names)) return 'names changed';
  let signedByCa = false;
  try {
    const caX509 = new X509Certificate(ca.certPem);
    signedByCa = x509.checkIssued(caX509) && x509.verify(caX509.publicKey);
  } catch {
    signedByCa = false;
  }
  if (!signedByCa) return 'CA changed';
  const notBefore = Date.parse(x509.validFrom);
  const notAfter = Date.parse(x509.validTo);
  if (!Number.isFinite(notBefore) || !Number.isFinite(notAfter)) return 'unreadable';
  if (notBefore > now.getTime()) return 'not yet valid';
  if (notAfter - now.getTime() <= RENEW_BEFORE_DAYS * DAY_MS) return 'expires soon';
  return null;
}

/**
 * Issues a server certificate for exactly `names` with a new ECDSA P-256 key, signed by the (RSA) CA, as
 * `mkcert -ecdsa` does. Pure apart from randomness.
 */
export async function issueLeaf(
  spec: LeafSpec,
  ca: Pick<CertificateAuthority, 'cert' | 'key'>,
  now: Date,
  newKey: () => Promise<LeafKey> = generateEcKey,
): Promise<{ certPem: string; keyPem: string; fingerprint: string }> {
  if (spec.names.length === 0) throw new TlsError(`certificate ${spec.id} has no names to cover`, { file: spec.certPath });
  const { keyPem, spkiDer } = await newKey();
  const cert = forge.pki.createCertificate();
  // forge holds RSA keys only: the CA's public key stands in; signCertificate puts the EC key into the TBS.
  cert.publicKey = ca.cert.publicKey;
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = new Date(now.getTime());
  cert.validity.notAfter = new Date(now.getTime() + LEAF_VALIDITY_DAYS * DAY_MS);
  const ou = ca.cert.subject.getField('OU')?.value as string | undefined;
  cert.setSubject([
    { name: 'organizationName', value: 'lo development certificate' },
    // UTF8String: `user@host` is not a valid PrintableString for Go's x509 (see ca.ts).
    ...(ou ? [{ shortName: 'OU', value: ou, valueTagClass: forge.asn1.Type.UTF8 as unknown as forge.asn1.Class }] : []),
    { name: 'commonName', value: `lo ${spec.id}`.slice(0, 64) },
  ]);
  cert.setIssuer(ca.cert.subject.attributes);
  const { ips, dns } = splitNames(spec.names);
  const caSki = (ca.cert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | undefined)?.subjectKeyIdentifier;
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    // keyEncipherment is for RSA keys only (mkcert sets it for those)
    { name: 'keyUsage', digitalSignature: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [...dns.map((value) => ({ type: 2, value })), ...ips.map((ip) => ({ type: 7, ip }))] },
    {
      id: '2.5.29.14',
      name: 'subjectKeyIdentifier',
      value: forge.asn1
        .toDer(forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.OCTETSTRING, false, subjectKeyId(spkiDer)))
        .getBytes(),
    },
    {
      name: 'authorityKeyIdentifier',
      keyIdentifier: caSki ? forge.util.hexToBytes(caSki) : ca.cert.generateSubjectKeyIdentifier().getBytes(),
    },
  ]);
  signCertificate(cert, ca.key, spkiDer);
  const certPem = forge.pki.certificateToPem(cert); // from the signed TBS (with the EC key)
  return { certPem, keyPem, fingerprint: x509Fingerprint(new X509Certificate(certPem)) };
}

/** A constrained CA cannot certify a name outside its scope: TLS clients would refuse the chain. Say so first. */
function assertInScope(spec: LeafSpec, ca: Pick<CertificateAuthority, 'cert' | 'certPath'>): void {
  const scope = caScope(ca.cert);
  const outside = namesOutsideScope(scope, spec.names);
  if (outside.length === 0) return;
  throw new TlsError(
    `certificate ${spec.id} needs ${outside.join(', ')}, outside what the CA ${ca.certPath} may certify (${[...scope!.ipRanges, ...scope!.dns].join(', ')})`,
    {
      file: ca.certPath,
      exitCode: ExitCode.badInput,
      hint: 'put the registry networks in a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16: spec.network.cidr, spec.registries.shared.network.cidr), or use a CA without name constraints by pointing $CAROOT at it',
    },
  );
}

function readLeafFile(path: string): Promise<string | null> {
  return readTlsFile(path, {
    permission: `fix the permissions of ${path} (lo writes it for your user), or remove it so lo re-issues it`,
    other: `remove ${path} so lo re-issues it`,
  });
}

async function readLeaf(spec: LeafSpec): Promise<{ certPem: string | null; keyPem: string | null }> {
  const [certPem, keyPem] = await Promise.all([readLeafFile(spec.certPath), readLeafFile(spec.keyPath)]);
  return { certPem, keyPem };
}

/**
 * Makes sure `spec.certPath`/`spec.keyPath` hold a valid certificate for exactly `spec.names` from this CA.
 * Unchanged files are not touched (same bytes, same mtime). (Re)issuing holds a lock on the certificate so
 * concurrent runs never pair one run's certificate with another's key; files are written atomically.
 */
export async function ensureLeaf(
  spec: LeafSpec,
  ca: CertificateAuthority,
  now: Date,
  newKey?: () => Promise<LeafKey>,
): Promise<LeafResult> {
  assertInScope(spec, ca);
  const unchanged = async (certPem: string): Promise<LeafResult> => {
    // Tighten a key someone loosened; chmod changes ctime only, never the bytes or the mtime.
    const st = await stat(spec.keyPath);
    if ((st.mode & 0o777) !== LEAF_KEY_MODE) await chmod(spec.keyPath, LEAF_KEY_MODE).catch(() => undefined);
    return {
      id: spec.id,
      certPath: spec.certPath,
      keyPath: spec.keyPath,
      fingerprint: x509Fingerprint(new X509Certificate(certPem)),
      action: 'unchanged',
    };
  };
  const first = await readLeaf(spec);
  if (reissueReason(first, spec, ca, now) === null) return unchanged(first.certPem!);
  try {
    return await withFileLock(spec.certPath, async () => {
      const current = await readLeaf(spec);
      const reason = reissueReason(current, spec, ca, now);
      if (reason === null) return unchanged(current.certPem!);
      const leaf = await issueLeaf(spec, ca, now, newKey);
      // Key first, then certificate: readers that see the new certificate find its key already in place.
      await writeFileAtomic(spec.keyPath, leaf.keyPem, LEAF_KEY_MODE);
      await writeFileAtomic(spec.certPath, leaf.certPem, CERT_MODE);
      const action: LeafAction = current.certPem === null && current.keyPem === null ? 'created' : 'reissued';
      return { id: spec.id, certPath: spec.certPath, keyPath: spec.keyPath, fingerprint: leaf.fingerprint, action, reason };
    });
  } catch (err) {
    if (err instanceof TlsError) throw err;
    if (isPermissionError(err)) {
      const dir = dirname(spec.certPath);
      throw new TlsError(`cannot write certificate ${spec.id} in ${dir}: ${(err as Error).message}`, {
        file: dir,
        cause: err,
        hint: `fix the permissions of ${dir} (lo's state directory; set LO_STATE_DIR to move it)`,
      });
    }
    throw err;
  }
}
