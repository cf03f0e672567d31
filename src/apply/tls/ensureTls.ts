import { dirname } from 'node:path';
import type { Plan } from '../../plan/types.js';
import { CERT_MODE, loadOrCreateCa } from './ca.js';
import { writeIfChanged } from './files.js';
import { ensureLeaf, type LeafAction } from './leaf.js';
import { isPermissionError, TlsError } from './tlsError.js';

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
 * planned certificate exists for exactly its names, and copies the CA into the containerd certs.d tree.
 * Returns null when the plan has TLS off. Files that need no change are not touched.
 */
export async function ensureTls(plan: Plan, opts: EnsureTlsOptions = {}): Promise<TlsMaterial | null> {
  if (!plan.tls.enabled) return null;
  const now = opts.now ?? new Date();
  const ca = await loadOrCreateCa(
    { caRoot: plan.tls.caRoot, certPath: plan.tls.caCertPath, keyPath: plan.tls.caKeyPath },
    { now, ...(opts.identity ? { identity: opts.identity } : {}) },
  );
  const certificates: Record<string, TlsCertificateMaterial> = {};
  for (const c of plan.tls.certificates) {
    const r = await ensureLeaf({ id: c.id, certPath: c.certPath, keyPath: c.keyPath, names: c.names }, ca, now);
    const action: LeafAction = r.action;
    certificates[c.id] = { id: r.id, certPath: r.certPath, keyPath: r.keyPath, fingerprint: r.fingerprint, action };
  }
  if (plan.containerd.caFile) {
    try {
      await writeIfChanged(plan.containerd.caFile, ca.certPem, CERT_MODE);
    } catch (err) {
      if (!isPermissionError(err)) throw err;
      const dir = dirname(plan.containerd.caFile);
      throw new TlsError(`cannot copy the CA into ${dir}: ${(err as Error).message}`, {
        file: dir,
        cause: err,
        hint: `fix the permissions of ${dir} (lo's state directory; set LO_STATE_DIR to move it)`,
      });
    }
  }
  return { caCertPem: ca.certPem, caFingerprint: ca.fingerprint, caCreated: ca.created, certificates };
}
