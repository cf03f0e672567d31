import type { Plan } from '../../plan/types.js';
import { loadOrCreateCa } from './ca.js';
import { ensureLeaf, type LeafAction } from './leaf.js';

export interface TlsCertificateMaterial {
  id: string;
  certPath: string;
  keyPath: string;
  /** SHA-256 of the certificate DER (hex). Executors put it in container spec hashes: a new certificate recreates the container. */
  fingerprint: string;
  action: 'created' | 'reissued' | 'unchanged';
}

export interface TlsMaterial {
  caCertPem: string;
  caFingerprint: string;
  caCreated: boolean;
  certificates: Record<string, TlsCertificateMaterial>;
}

export interface EnsureTlsOptions {
  /** The clock (tests inject it to check renewal). */
  now?: Date;
  /** `user@host` for a newly created CA's subject (mkcert style); defaults to the current user and host. */
  identity?: string;
}

/**
 * Applies the plan's TLS part, idempotently: loads (or creates) the mkcert-layout CA, makes sure every
 * planned certificate exists for exactly its names. The CA's copy in the containerd certs.d tree is written
 * by applyCertsDir (src/apply/certsDir.ts), the one writer of that tree, which reports it as an action.
 * Returns null when the plan has TLS off. Files that need no change are not touched.
 */
export async function ensureTls(plan: Plan, opts: EnsureTlsOptions = {}): Promise<TlsMaterial | null> {
  if (!plan.tls.enabled) return null;
  const now = opts.now ?? new Date();
  // A new CA's RSA 3072 key (mkcert's) is most of a first run; certificates' ECDSA keys take a millisecond each.
  const ca = await loadOrCreateCa(
    { caRoot: plan.tls.caRoot, certPath: plan.tls.caCertPath, keyPath: plan.tls.caKeyPath },
    { now, ...(opts.identity ? { identity: opts.identity } : {}) },
  );
  const results = await Promise.all(
    plan.tls.certificates.map((c) => ensureLeaf({ id: c.id, certPath: c.certPath, keyPath: c.keyPath, names: c.names }, ca, now)),
  );
  const certificates: Record<string, TlsCertificateMaterial> = {};
  for (const r of results) {
    const action: LeafAction = r.action;
    certificates[r.id] = { id: r.id, certPath: r.certPath, keyPath: r.keyPath, fingerprint: r.fingerprint, action };
  }
  return { caCertPem: ca.certPem, caFingerprint: ca.fingerprint, caCreated: ca.created, certificates };
}
