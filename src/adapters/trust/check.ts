import { join } from 'node:path';
import type { Plan } from '../../plan/types.js';
import { caUniqueName, loadCa, type CertificateAuthority } from '../../apply/tls/ca.js';
import { readIfExists } from '../../apply/files.js';
import { errnoCode } from '../../apply/tls/tlsError.js';
import { shellCommand } from '../../util/shell.js';
import { canWrite, pemBodies, samePem, trustEnvOf, trustFileName, type SystemStore, type TrustEnv, type TrustEnvSource } from './stores.js';

type TrustState = 'trusted' | 'missing' | 'different';

export interface TrustItem {
  /** Stable id: `system`, `docker:<host>`. */
  id: string;
  kind: 'ca' | 'system' | 'docker';
  /** File or keychain the item is about. */
  target: string;
  host?: string;
  state: TrustState;
  /** What `lo trust` would do; absent when trusted. */
  change?: string;
}

export interface TrustReport {
  tls: boolean;
  ca: { certPath: string; fingerprint: string | null; name: string | null; exists: boolean };
  trusted: boolean;
  items: TrustItem[];
  /** Short names of the missing items (for `lo provision`'s warning). */
  missing: string[];
  /** Some change needs root we do not have. */
  needsRoot: boolean;
  /** The exact command that fixes what is missing. */
  command: string;
}

/** The hosts `docker push`/`pull` uses for the build and cache registries: every address and hostname. */
export function dockerTrustHosts(plan: Plan): string[] {
  const hosts = plan.registries
    .filter((r) => r.role === 'build' || r.role === 'cache')
    .flatMap((r) => [r.ip, ...r.hostnames].map((h) => (r.port === 443 ? h : `${h}:${r.port}`)));
  return [...new Set(hosts)];
}

/** The exact `lo trust` command line that fixes what is missing (with sudo when a target needs root). */
export function trustCommand(plan: Plan, opts: { domain?: string; sudo: boolean }): string {
  const builtIn = plan.project.file.startsWith('<built-in');
  const args = builtIn ? ['trust'] : opts.domain ? ['trust', opts.domain] : ['--config', plan.project.file, 'trust'];
  // sudo resets the environment; CAROOT must still point at the same CA. Every argument is shell-quoted.
  const lo = ['lo', ...args, '--yes'];
  return shellCommand(opts.sudo ? ['sudo', 'env', `CAROOT=${plan.tls.caRoot}`, ...lo] : lo);
}

async function systemItem(ca: CertificateAuthority, store: SystemStore, env: TrustEnv): Promise<TrustItem> {
  if (store.kind === 'keychain') {
    const r = await env.run(['security', 'verify-cert', '-c', ca.certPath]);
    return r.exitCode === 0
      ? { id: 'system', kind: 'system', target: store.keychain, state: 'trusted' }
      : {
          id: 'system',
          kind: 'system',
          target: store.keychain,
          state: 'missing',
          change: `security add-trusted-cert -d -r trustRoot -k ${store.keychain} ${ca.certPath}`,
        };
  }
  const file = join(store.anchorDir, trustFileName(ca, store.extension));
  for (const bundle of store.bundlePaths) {
    const text = await readIfExists(bundle).catch(() => null);
    if (text && pemBodies(text).includes(pemBodies(ca.certPem)[0]!))
      return { id: 'system', kind: 'system', target: file, state: 'trusted' };
  }
  const present = samePem(await readIfExists(file).catch(() => null), ca.certPem);
  return {
    id: 'system',
    kind: 'system',
    target: file,
    state: 'missing',
    change: `${present ? '' : `write ${file}, then `}run ${store.updateCommand.join(' ')} (system store: ${store.name})`,
  };
}

async function dockerItem(ca: CertificateAuthority, dir: string, host: string): Promise<TrustItem> {
  const file = join(dir, host, 'ca.crt');
  const current = await readIfExists(file).catch((err: unknown) => {
    if (errnoCode(err) === 'EACCES') return '';
    throw err;
  });
  const id = `docker:${host}`;
  if (samePem(current, ca.certPem)) return { id, kind: 'docker', target: file, host, state: 'trusted' };
  return current === null
    ? { id, kind: 'docker', target: file, host, state: 'missing', change: `write ${file}` }
    : { id, kind: 'docker', target: file, host, state: 'different', change: `replace ${file} (it holds another CA)` };
}

/** What is and is not trusted, with the change `lo trust` would make for each item and whether it needs root. */
export async function trustReport(plan: Plan, ca: CertificateAuthority | null, env: TrustEnv, domain?: string): Promise<TrustReport> {
  const base = {
    tls: plan.tls.enabled,
    ca: {
      certPath: plan.tls.caCertPath,
      fingerprint: ca?.fingerprint ?? null,
      name: ca ? caUniqueName(ca.cert) : null,
      exists: ca !== null,
    },
  };
  if (!plan.tls.enabled) return { ...base, trusted: true, items: [], missing: [], needsRoot: false, command: '' };
  const items: TrustItem[] = [];
  if (!ca) {
    // No CA yet: everything is missing; list it all so the user sees every change before saying yes.
    items.push({ id: 'ca', kind: 'ca', target: plan.tls.caCertPath, state: 'missing', change: `create the CA in ${plan.tls.caRoot}` });
    const store = env.systemStore;
    if (store?.kind === 'anchors') {
      const file = join(store.anchorDir, `mkcert_development_CA_<serial>${store.extension}`);
      items.push({
        id: 'system',
        kind: 'system',
        target: file,
        state: 'missing',
        change: `write ${file}, then run ${store.updateCommand.join(' ')} (system store: ${store.name})`,
      });
    } else if (store?.kind === 'keychain') {
      items.push({
        id: 'system',
        kind: 'system',
        target: store.keychain,
        state: 'missing',
        change: `security add-trusted-cert -d -r trustRoot -k ${store.keychain} ${plan.tls.caCertPath}`,
      });
    }
    if (env.dockerCertsDir) {
      for (const h of dockerTrustHosts(plan)) {
        const file = join(env.dockerCertsDir, h, 'ca.crt');
        const exists = (await readIfExists(file).catch(() => '')) !== null;
        items.push({
          id: `docker:${h}`,
          kind: 'docker',
          target: file,
          host: h,
          state: exists ? 'different' : 'missing',
          change: exists ? `replace ${file} (it holds another CA)` : `write ${file}`,
        });
      }
    }
  } else {
    if (env.systemStore) items.push(await systemItem(ca, env.systemStore, env));
    if (env.dockerCertsDir) for (const h of dockerTrustHosts(plan)) items.push(await dockerItem(ca, env.dockerCertsDir, h));
  }
  const todo = items.filter((i) => i.state !== 'trusted');
  const writable = await Promise.all(
    todo.map((i) =>
      i.kind === 'ca'
        ? Promise.resolve(true)
        : i.kind === 'system' && env.systemStore?.kind === 'keychain'
          ? Promise.resolve(env.isRoot)
          : canWrite(i.target, env.isRoot),
    ),
  );
  const needsRoot = writable.some((w) => !w);
  return {
    ...base,
    trusted: todo.length === 0,
    items,
    missing: todo.map((i) => (i.kind === 'docker' ? `docker certs.d/${i.host}` : i.kind === 'system' ? 'system store' : 'CA')),
    needsRoot,
    command: trustCommand(plan, { ...(domain ? { domain } : {}), sudo: needsRoot }),
  };
}

/**
 * Read-only: whether the host trusts the plan's CA (system store and Docker's certs.d for the build and
 * cache registries). Never creates or changes anything. `lo provision` and `lo doctor` use it to warn.
 */
export async function checkTrust(plan: Plan, opts: TrustEnvSource & { domain?: string; now?: Date }): Promise<TrustReport> {
  const env = await trustEnvOf(opts);
  if (!plan.tls.enabled) return trustReport(plan, null, env, opts.domain);
  const ca = await loadCa({ caRoot: plan.tls.caRoot, certPath: plan.tls.caCertPath, keyPath: plan.tls.caKeyPath }, opts.now ?? new Date());
  return trustReport(plan, ca, env, opts.domain);
}
