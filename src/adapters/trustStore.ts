import { constants } from 'node:fs';
import { access, chown, readdir, rm, rmdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import type { Plan } from '../plan/types.js';
import { caUniqueName, loadCa, loadOrCreateCa, type CertificateAuthority } from '../apply/tls/ca.js';
import { readIfExists, writeFileAtomic } from '../apply/files.js';
import { errnoCode, isPermissionError, TlsError } from '../apply/tls/tlsError.js';

/**
 * Where the host trusts CAs. Linux stores are a directory of anchors plus a command that rebuilds the
 * bundle (the same places mkcert uses: https://github.com/FiloSottile/mkcert/blob/master/truststore_linux.go);
 * macOS is a keychain driven by `security`.
 */
export type SystemStore =
  | {
      kind: 'anchors';
      /** debian, fedora, arch, suse: for messages. */
      name: string;
      anchorDir: string;
      /** File extension the distribution's tool picks up (.crt on Debian, .pem on Fedora). */
      extension: '.crt' | '.pem';
      /** The bundles the update command writes; the CA is trusted when one of them contains it. */
      bundlePaths: string[];
      updateCommand: string[];
      /** Rebuilds the bundle after a removal (Debian needs --fresh to drop the links of a removed file). */
      removeCommand?: string[];
    }
  | { kind: 'keychain'; name: 'macos'; keychain: string };

export interface TrustEnv {
  /** null: this platform's system store is not supported (only Docker's certs.d is handled). */
  systemStore: SystemStore | null;
  /** Docker's per-registry CA directory (`<dir>/<host>/ca.crt`); null to skip. */
  dockerCertsDir: string | null;
  /** Runs a command (update-ca-certificates, security); default execa. */
  run: (argv: string[]) => Promise<{ exitCode: number; output: string }>;
  /** Whether we run as root (then nothing needs sudo). */
  isRoot: boolean;
  /**
   * Under `sudo`, the user who ran it ($SUDO_UID/$SUDO_GID): a CA created by `sudo lo trust` is handed to
   * that user, or their next `lo registry up` could not read the root-owned 0400 key.
   */
  sudoOwner?: { uid: number; gid: number };
}

export interface TrustEnvOptions {
  platform?: NodeJS.Platform;
  home?: string;
  /** Probe for a directory's existence (tests point it elsewhere). */
  exists?: (path: string) => Promise<boolean>;
  env?: NodeJS.ProcessEnv;
}

async function dirExists(path: string): Promise<boolean> {
  try {
    await access(path, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

export async function runCommand(argv: string[]): Promise<{ exitCode: number; output: string }> {
  const [cmd, ...args] = argv;
  const r = await execa(cmd!, args, { reject: false, all: true, stdin: 'ignore' });
  if (r.failed && r.exitCode === undefined) {
    throw new TlsError(`cannot run ${cmd}: ${r.shortMessage}`, { hint: `install ${cmd} or add it to PATH` });
  }
  return { exitCode: r.exitCode ?? 1, output: r.all ?? '' };
}

/** The platform's trust store (detected like mkcert does) and Docker's certs.d. */
export async function defaultTrustEnv(opts: TrustEnvOptions = {}): Promise<TrustEnv> {
  const platform = opts.platform ?? process.platform;
  const exists = opts.exists ?? dirExists;
  const home = opts.home ?? homedir();
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const env = opts.env ?? process.env;
  const sudoOwner = isRoot && env.SUDO_UID && env.SUDO_GID ? { uid: Number(env.SUDO_UID), gid: Number(env.SUDO_GID) } : undefined;
  // Docker's certs.d only where Docker is installed (its config directory exists).
  const dockerDir = async (dir: string): Promise<string | null> => ((await exists(dirname(dir))) ? dir : null);
  if (platform === 'darwin') {
    return {
      systemStore: { kind: 'keychain', name: 'macos', keychain: '/Library/Keychains/System.keychain' },
      // Docker Desktop reads ~/.docker/certs.d on macOS.
      dockerCertsDir: await dockerDir(join(home, '.docker', 'certs.d')),
      run: runCommand,
      isRoot,
      ...(sudoOwner ? { sudoOwner } : {}),
    };
  }
  let systemStore: SystemStore | null = null;
  if (platform === 'linux') {
    const candidates: Array<Extract<SystemStore, { kind: 'anchors' }>> = [
      {
        kind: 'anchors',
        name: 'fedora',
        anchorDir: '/etc/pki/ca-trust/source/anchors',
        extension: '.pem',
        bundlePaths: ['/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem', '/etc/pki/tls/certs/ca-bundle.crt'],
        updateCommand: ['update-ca-trust', 'extract'],
      },
      {
        kind: 'anchors',
        name: 'debian',
        anchorDir: '/usr/local/share/ca-certificates',
        extension: '.crt',
        bundlePaths: ['/etc/ssl/certs/ca-certificates.crt'],
        updateCommand: ['update-ca-certificates'],
        removeCommand: ['update-ca-certificates', '--fresh'],
      },
      {
        kind: 'anchors',
        name: 'arch',
        anchorDir: '/etc/ca-certificates/trust-source/anchors',
        extension: '.crt',
        bundlePaths: ['/etc/ssl/certs/ca-certificates.crt'],
        updateCommand: ['trust', 'extract-compat'],
      },
      {
        kind: 'anchors',
        name: 'suse',
        anchorDir: '/usr/share/pki/trust/anchors',
        extension: '.pem',
        bundlePaths: ['/etc/ssl/ca-bundle.pem'],
        updateCommand: ['update-ca-certificates'],
      },
    ];
    for (const c of candidates) {
      if (await exists(c.anchorDir)) {
        systemStore = c;
        break;
      }
    }
  }
  return {
    systemStore,
    dockerCertsDir: platform === 'linux' ? await dockerDir('/etc/docker/certs.d') : null,
    run: runCommand,
    isRoot,
    ...(sudoOwner ? { sudoOwner } : {}),
  };
}

export type TrustState = 'trusted' | 'missing' | 'different';

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

/** PEM -> the base64 body of each certificate, whitespace removed, for robust comparison. */
function pemBodies(text: string): string[] {
  const out: string[] = [];
  const re = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[1]!.replace(/\s+/g, ''));
  return out;
}

function samePem(a: string | null, b: string): boolean {
  if (a === null) return false;
  const x = pemBodies(a);
  const y = pemBodies(b);
  return x.length === 1 && y.length === 1 && x[0] === y[0];
}

export function trustFileName(ca: Pick<CertificateAuthority, 'cert'>, extension: string): string {
  return `${caUniqueName(ca.cert).replace(/ /g, '_')}${extension}`;
}

/** Nearest existing ancestor is writable by us (or we are root). */
async function canWrite(path: string, isRoot: boolean): Promise<boolean> {
  if (isRoot) return true;
  let p = path;
  for (;;) {
    if (await dirExists(p)) {
      try {
        await access(p, constants.W_OK);
        return true;
      } catch {
        return false;
      }
    }
    const up = dirname(p);
    if (up === p) return false;
    p = up;
  }
}

export function trustCommand(plan: Plan, opts: { domain?: string; sudo: boolean }): string {
  const builtIn = plan.project.file.startsWith('<built-in');
  const args = builtIn ? 'trust' : opts.domain ? `trust ${opts.domain}` : `--config ${plan.project.file} trust`;
  // sudo resets the environment; CAROOT must still point at the same CA.
  return opts.sudo ? `sudo env CAROOT=${plan.tls.caRoot} lo ${args} --yes` : `lo ${args} --yes`;
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

async function report(plan: Plan, ca: CertificateAuthority | null, env: TrustEnv, domain?: string): Promise<TrustReport> {
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
export async function checkTrust(plan: Plan, opts: { env?: TrustEnv; domain?: string; now?: Date } = {}): Promise<TrustReport> {
  const env = opts.env ?? (await defaultTrustEnv());
  if (!plan.tls.enabled) return report(plan, null, env, opts.domain);
  const ca = await loadCa({ caRoot: plan.tls.caRoot, certPath: plan.tls.caCertPath, keyPath: plan.tls.caKeyPath }, opts.now ?? new Date());
  return report(plan, ca, env, opts.domain);
}

/** Alias for callers that only want the verdict (`lo provision`'s one-time warning). */
export const isCaTrusted = checkTrust;

export interface TrustOptions {
  env?: TrustEnv;
  domain?: string;
  now?: Date;
  /** Asked with the report of what will change; resolve false to change nothing. Absent: apply. */
  confirm?: (report: TrustReport) => Promise<boolean>;
}

export interface TrustResult {
  /** The state before. */
  before: TrustReport;
  /** The state after (equal to before when nothing was done). */
  after: TrustReport;
  /** Ids of the items changed. */
  changed: string[];
  declined: boolean;
}

function needsRootError(plan: Plan, r: TrustReport, domain: string | undefined, cause?: unknown): TlsError {
  const targets = r.items.filter((i) => i.state !== 'trusted').map((i) => i.target);
  return new TlsError(`installing the CA needs root: ${targets.join(', ')}`, {
    ...(cause === undefined ? {} : { cause }),
    hint: `rerun with sudo: ${trustCommand(plan, { ...(domain ? { domain } : {}), sudo: true })}`,
  });
}

/**
 * `lo trust`: creates the CA if there is none, then installs it in the system store and in Docker's
 * certs.d for each build/cache address and hostname. Idempotent: trusted items are left alone, and a
 * second run changes nothing.
 */
export async function trustCa(plan: Plan, opts: TrustOptions = {}): Promise<TrustResult> {
  const env = opts.env ?? (await defaultTrustEnv());
  const now = opts.now ?? new Date();
  if (!plan.tls.enabled) {
    const r = await report(plan, null, env, opts.domain);
    return { before: r, after: r, changed: [], declined: false };
  }
  const files = { caRoot: plan.tls.caRoot, certPath: plan.tls.caCertPath, keyPath: plan.tls.caKeyPath };
  const existing = await loadCa(files, now);
  const preview = await report(plan, existing, env, opts.domain);
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
  const todo = (await report(plan, ca, env, opts.domain)).items.filter((i) => i.state !== 'trusted');
  try {
    for (const item of todo) {
      if (item.kind === 'docker') {
        await writeFileAtomic(item.target, ca.certPem, 0o644);
        changed.push(item.id);
      } else if (item.kind === 'system' && env.systemStore) {
        await installSystem(ca, env.systemStore, env);
        changed.push(item.id);
      }
    }
  } catch (err) {
    if (isPermissionError(err)) throw needsRootError(plan, preview, opts.domain, err);
    throw err;
  }
  const after = await report(plan, ca, env, opts.domain);
  const stillMissing = after.items.filter((i) => i.state !== 'trusted');
  if (stillMissing.length > 0) {
    throw new TlsError(`the CA is still not trusted after installing it: ${stillMissing.map((i) => i.target).join(', ')}`, {
      file: stillMissing[0]!.target,
      hint: 'run `lo trust --check` to see each item; the system store command may have failed silently',
    });
  }
  return { before: preview, after, changed, declined: false };
}

async function installSystem(ca: CertificateAuthority, store: SystemStore, env: TrustEnv): Promise<void> {
  if (store.kind === 'keychain') {
    const r = await env.run(['security', 'add-trusted-cert', '-d', '-r', 'trustRoot', '-k', store.keychain, ca.certPath]);
    if (r.exitCode !== 0)
      throw new TlsError(`security add-trusted-cert failed: ${r.output.trim()}`, {
        file: store.keychain,
        hint: 'rerun with sudo (the System keychain needs an administrator)',
      });
    return;
  }
  const file = join(store.anchorDir, trustFileName(ca, store.extension));
  const current = await readIfExists(file);
  if (!samePem(current, ca.certPem)) await writeFileAtomic(file, ca.certPem, 0o644);
  const r = await env.run(store.updateCommand);
  if (r.exitCode !== 0) {
    throw new TlsError(`${store.updateCommand.join(' ')} failed (exit ${r.exitCode}): ${r.output.trim().split('\n').slice(-3).join(' ')}`, {
      file,
      hint: /denied|permission|EACCES/i.test(r.output)
        ? 'rerun with sudo'
        : `run ${store.updateCommand.join(' ')} yourself and check its output`,
    });
  }
}

export interface UntrustResult {
  before: TrustReport;
  /** Ids of the items removed. */
  removed: string[];
  declined: boolean;
}

/**
 * `lo trust --uninstall`: removes what `lo trust` (or `mkcert -install`) added for this CA: the system
 * store file (then rebuilds the bundle) and each Docker `certs.d/<host>/ca.crt` that holds this CA.
 * Files holding another CA are left alone. The CA itself stays in CAROOT.
 */
export async function untrustCa(plan: Plan, opts: TrustOptions = {}): Promise<UntrustResult> {
  const env = opts.env ?? (await defaultTrustEnv());
  const files = { caRoot: plan.tls.caRoot, certPath: plan.tls.caCertPath, keyPath: plan.tls.caKeyPath };
  const ca = plan.tls.enabled ? await loadCa(files, opts.now ?? new Date()) : null;
  const current = await report(plan, ca, env, opts.domain);
  if (!ca) return { before: current, removed: [], declined: false };
  const items: TrustItem[] = [];
  const store = env.systemStore;
  if (store?.kind === 'anchors') {
    const file = join(store.anchorDir, trustFileName(ca, store.extension));
    if ((await readIfExists(file).catch(() => null)) !== null) {
      items.push({
        id: 'system',
        kind: 'system',
        target: file,
        state: 'trusted',
        change: `remove ${file}, then run ${(store.removeCommand ?? store.updateCommand).join(' ')}`,
      });
    }
  } else if (store?.kind === 'keychain' && current.items.find((i) => i.id === 'system')?.state === 'trusted') {
    items.push({
      id: 'system',
      kind: 'system',
      target: store.keychain,
      state: 'trusted',
      change: `security remove-trusted-cert -d ${ca.certPath}`,
    });
  }
  for (const i of current.items) {
    if (i.kind === 'docker' && i.state === 'trusted') items.push({ ...i, change: `remove ${i.target}` });
  }
  const preview: TrustReport = { ...current, items, missing: [], trusted: true };
  if (items.length === 0) return { before: preview, removed: [], declined: false };
  const writable = await Promise.all(
    items.map((i) =>
      store?.kind === 'keychain' && i.kind === 'system' ? Promise.resolve(env.isRoot) : canWrite(dirname(i.target), env.isRoot),
    ),
  );
  if (writable.some((w) => !w)) {
    throw new TlsError(`removing the CA needs root: ${items.map((i) => i.target).join(', ')}`, {
      hint: `rerun with sudo: ${trustCommand(plan, { ...(opts.domain ? { domain: opts.domain } : {}), sudo: true }).replace(' --yes', ' --uninstall --yes')}`,
    });
  }
  if (opts.confirm && !(await opts.confirm(preview))) return { before: preview, removed: [], declined: true };
  const removed: string[] = [];
  try {
    for (const i of items) {
      if (i.kind === 'docker') {
        await rm(i.target, { force: true });
        // Drop the host directory when lo's ca.crt was all it held.
        if ((await readdir(dirname(i.target)).catch(() => ['?'])).length === 0) await rmdir(dirname(i.target)).catch(() => undefined);
      } else if (store?.kind === 'anchors') {
        await rm(i.target, { force: true });
        const cmd = store.removeCommand ?? store.updateCommand;
        const r = await env.run(cmd);
        if (r.exitCode !== 0)
          throw new TlsError(`${cmd.join(' ')} failed (exit ${r.exitCode}): ${r.output.trim().split('\n').slice(-3).join(' ')}`, {
            file: i.target,
            hint: `run ${cmd.join(' ')} yourself and check its output`,
          });
      } else if (store?.kind === 'keychain') {
        const r = await env.run(['security', 'remove-trusted-cert', '-d', ca.certPath]);
        if (r.exitCode !== 0)
          throw new TlsError(`security remove-trusted-cert failed: ${r.output.trim()}`, { file: store.keychain, hint: 'rerun with sudo' });
      }
      removed.push(i.id);
    }
  } catch (err) {
    if (isPermissionError(err)) {
      throw new TlsError(`removing the CA needs root: ${(err as Error).message}`, {
        cause: err,
        hint: `rerun with sudo: ${trustCommand(plan, { ...(opts.domain ? { domain: opts.domain } : {}), sudo: true }).replace(' --yes', ' --uninstall --yes')}`,
      });
    }
    throw err;
  }
  return { before: preview, removed, declined: false };
}
