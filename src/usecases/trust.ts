import { chown } from 'node:fs/promises';
import type { Plan } from '../plan/types.js';
import { loadCa, loadOrCreateCa } from '../apply/tls/ca.js';
import { isPermissionError, TlsError } from '../apply/tls/tlsError.js';
import { trustCommand, trustReport, type TrustReport } from '../adapters/trust/check.js';
import { installItem } from '../adapters/trust/install.js';
import { dirExists, trustEnvOf, type TrustEnvSource } from '../adapters/trust/stores.js';
import { removalItems, removalNeedsRoot, removeItem } from '../adapters/trust/uninstall.js';

type TrustOptions = TrustEnvSource & {
  domain?: string;
  now?: Date;
  /** Asked with the report of what will change; resolve false to change nothing. Absent: apply. */
  confirm?: (report: TrustReport) => Promise<boolean>;
};

interface TrustResult {
  /** The state before. */
  before: TrustReport;
  /** The state after (equal to before when nothing was done). */
  after: TrustReport;
  /** Ids of the items changed. */
  changed: string[];
  declined: boolean;
}

interface UntrustResult {
  before: TrustReport;
  /** Ids of the items removed. */
  removed: string[];
  declined: boolean;
}

const caFiles = (plan: Plan) => ({ caRoot: plan.tls.caRoot, certPath: plan.tls.caCertPath, keyPath: plan.tls.caKeyPath });

function sudoCommand(plan: Plan, domain: string | undefined, uninstall = false): string {
  const command = trustCommand(plan, { ...(domain ? { domain } : {}), sudo: true });
  return uninstall ? command.replace(' --yes', ' --uninstall --yes') : command;
}

function needsRootError(plan: Plan, r: TrustReport, domain: string | undefined, cause?: unknown): TlsError {
  const targets = r.items.filter((i) => i.state !== 'trusted').map((i) => i.target);
  return new TlsError(`installing the CA needs root: ${targets.join(', ')}`, {
    ...(cause === undefined ? {} : { cause }),
    hint: `rerun with sudo: ${sudoCommand(plan, domain)}`,
  });
}

/**
 * `lo trust`: creates the CA if there is none, then installs it in the system store and in Docker's
 * certs.d for each build/cache address and hostname. Idempotent: trusted items are left alone, and a
 * second run changes nothing.
 */
export async function trustCa(plan: Plan, opts: TrustOptions): Promise<TrustResult> {
  const env = await trustEnvOf(opts);
  const now = opts.now ?? new Date();
  if (!plan.tls.enabled) {
    const r = await trustReport(plan, null, env, opts.domain);
    return { before: r, after: r, changed: [], declined: false };
  }
  const files = caFiles(plan);
  const existing = await loadCa(files, now);
  const preview = await trustReport(plan, existing, env, opts.domain);
  if (preview.trusted) return { before: preview, after: preview, changed: [], declined: false };
  if (preview.needsRoot) throw needsRootError(plan, preview, opts.domain);
  if (opts.confirm && !(await opts.confirm(preview))) return { before: preview, after: preview, changed: [], declined: true };

  const changed: string[] = [];
  const caRootExisted = await dirExists(files.caRoot);
  const ca = existing ?? (await loadOrCreateCa(files, { now }));
  if (!existing) {
    changed.push('ca');
    if (env.sudoOwner) {
      const { uid, gid } = env.sudoOwner;
      for (const p of [...(caRootExisted ? [] : [files.caRoot]), files.certPath, files.keyPath]) await chown(p, uid, gid);
    }
  }
  const todo = (await trustReport(plan, ca, env, opts.domain)).items.filter((i) => i.state !== 'trusted');
  try {
    for (const item of todo) if (await installItem(item, ca, env)) changed.push(item.id);
  } catch (err) {
    if (isPermissionError(err)) throw needsRootError(plan, preview, opts.domain, err);
    throw err;
  }
  const after = await trustReport(plan, ca, env, opts.domain);
  const stillMissing = after.items.filter((i) => i.state !== 'trusted');
  if (stillMissing.length > 0) {
    throw new TlsError(`the CA is still not trusted after installing it: ${stillMissing.map((i) => i.target).join(', ')}`, {
      file: stillMissing[0]!.target,
      hint: 'run `lo trust --check` to see each item; the system store command may have failed silently',
    });
  }
  return { before: preview, after, changed, declined: false };
}

/**
 * `lo trust --uninstall`: removes what `lo trust` (or `mkcert -install`) added for this CA: the system
 * store file (then rebuilds the bundle) and each Docker `certs.d/<host>/ca.crt` that holds this CA.
 * Files holding another CA are left alone. The CA itself stays in CAROOT.
 */
export async function untrustCa(plan: Plan, opts: TrustOptions): Promise<UntrustResult> {
  const env = await trustEnvOf(opts);
  const ca = plan.tls.enabled ? await loadCa(caFiles(plan), opts.now ?? new Date()) : null;
  const current = await trustReport(plan, ca, env, opts.domain);
  if (!ca) return { before: current, removed: [], declined: false };
  const items = await removalItems(ca, current, env);
  const preview: TrustReport = { ...current, items, missing: [], trusted: true };
  if (items.length === 0) return { before: preview, removed: [], declined: false };
  if (await removalNeedsRoot(items, env)) {
    throw new TlsError(`removing the CA needs root: ${items.map((i) => i.target).join(', ')}`, {
      hint: `rerun with sudo: ${sudoCommand(plan, opts.domain, true)}`,
    });
  }
  if (opts.confirm && !(await opts.confirm(preview))) return { before: preview, removed: [], declined: true };
  const removed: string[] = [];
  try {
    for (const i of items) {
      await removeItem(i, ca, env);
      removed.push(i.id);
    }
  } catch (err) {
    if (isPermissionError(err)) {
      throw new TlsError(`removing the CA needs root: ${(err as Error).message}`, {
        cause: err,
        hint: `rerun with sudo: ${sudoCommand(plan, opts.domain, true)}`,
      });
    }
    throw err;
  }
  return { before: preview, removed, declined: false };
}
