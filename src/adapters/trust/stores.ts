import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { caUniqueName, type CertificateAuthority } from '../../apply/tls/ca.js';
import { TlsError } from '../../apply/tls/tlsError.js';

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

interface TrustEnvOptions {
  platform?: NodeJS.Platform;
  home?: string;
  /** Probe for a directory's existence (tests point it elsewhere). */
  exists?: (path: string) => Promise<boolean>;
  /** The environment main injected, read for SUDO_UID/SUDO_GID and HOME (never process.env). */
  env: NodeJS.ProcessEnv;
  /** Our user id; default process.getuid(). */
  uid?: number;
}

export async function dirExists(path: string): Promise<boolean> {
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

/**
 * The Linux anchor stores, in the order they are probed: the first whose anchor directory exists is the
 * host's store.
 */
const LINUX_STORES: ReadonlyArray<Extract<SystemStore, { kind: 'anchors' }>> = [
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

/**
 * Where a trust command finds the host's stores: handed in (tests), or detected with the environment main
 * injected. One of the two is required, so nothing falls back to process.env.
 */
export type TrustEnvSource = { env: TrustEnv; processEnv?: NodeJS.ProcessEnv } | { env?: undefined; processEnv: NodeJS.ProcessEnv };

export async function trustEnvOf(src: TrustEnvSource): Promise<TrustEnv> {
  return src.env ?? (await defaultTrustEnv({ env: src.processEnv }));
}

/** The platform's trust store (detected like mkcert does) and Docker's certs.d. */
export async function defaultTrustEnv(opts: TrustEnvOptions): Promise<TrustEnv> {
  const platform = opts.platform ?? process.platform;
  const exists = opts.exists ?? dirExists;
  const home = opts.home ?? opts.env.HOME ?? homedir();
  const uid = opts.uid ?? (typeof process.getuid === 'function' ? process.getuid() : undefined);
  const isRoot = uid === 0;
  const env = opts.env;
  const sudoOwner = isRoot && env.SUDO_UID && env.SUDO_GID ? { uid: Number(env.SUDO_UID), gid: Number(env.SUDO_GID) } : undefined;
  const common = { run: runCommand, isRoot, ...(sudoOwner ? { sudoOwner } : {}) };
  // Docker's certs.d only where Docker is installed (its config directory exists).
  const dockerDir = async (dir: string): Promise<string | null> => ((await exists(dirname(dir))) ? dir : null);
  if (platform === 'darwin') {
    return {
      systemStore: { kind: 'keychain', name: 'macos', keychain: '/Library/Keychains/System.keychain' },
      // Docker Desktop reads ~/.docker/certs.d on macOS.
      dockerCertsDir: await dockerDir(join(home, '.docker', 'certs.d')),
      ...common,
    };
  }
  if (platform !== 'linux') return { systemStore: null, dockerCertsDir: null, ...common };
  let systemStore: SystemStore | null = null;
  for (const store of LINUX_STORES) {
    if (await exists(store.anchorDir)) {
      systemStore = { ...store, bundlePaths: [...store.bundlePaths], updateCommand: [...store.updateCommand] };
      break;
    }
  }
  return { systemStore, dockerCertsDir: await dockerDir('/etc/docker/certs.d'), ...common };
}

/** PEM -> the base64 body of each certificate, whitespace removed, for robust comparison. */
export function pemBodies(text: string): string[] {
  const out: string[] = [];
  const re = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[1]!.replace(/\s+/g, ''));
  return out;
}

/** Both texts hold exactly the same one certificate. */
export function samePem(a: string | null, b: string): boolean {
  if (a === null) return false;
  const x = pemBodies(a);
  const y = pemBodies(b);
  return x.length === 1 && y.length === 1 && x[0] === y[0];
}

export function trustFileName(ca: Pick<CertificateAuthority, 'cert'>, extension: string): string {
  return `${caUniqueName(ca.cert).replace(/ /g, '_')}${extension}`;
}

/** Nearest existing ancestor is writable by us (or we are root). */
export async function canWrite(path: string, isRoot: boolean): Promise<boolean> {
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
