import { homedir } from 'node:os';
import { join } from 'node:path';

export interface LoPaths {
  /** Per-user state: shared mirror configs and certificates, per-project certs.d trees and leaves. */
  stateDir: string;
  /** mkcert-compatible CA directory (rootCA.pem, rootCA-key.pem). */
  caRoot: string;
}

export interface PathEnv {
  /** The environment, injected from main (src/cli/main.ts); never read from process.env here. */
  env: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
  home?: string;
}

/** Resolves lo's directories the way mkcert and the XDG spec do. Environment and platform are parameters. */
export function resolvePaths({ env, platform = process.platform, home = homedir() }: PathEnv): LoPaths {
  const stateDir =
    env.LO_STATE_DIR ||
    (platform === 'darwin'
      ? join(home, 'Library', 'Application Support', 'lo')
      : join(env.XDG_STATE_HOME || join(home, '.local', 'state'), 'lo'));
  return { stateDir, caRoot: caRootDir({ env, platform, home }) };
}

/** mkcert's getCAROOT(): $CAROOT, else the platform's data dir + /mkcert. */
export function caRootDir({ env, platform = process.platform, home = homedir() }: PathEnv): string {
  if (env.CAROOT) return env.CAROOT;
  if (platform === 'darwin') return join(home, 'Library', 'Application Support', 'mkcert');
  if (platform === 'win32') return join(env.LocalAppData || join(home, 'AppData', 'Local'), 'mkcert');
  return join(env.XDG_DATA_HOME || join(home, '.local', 'share'), 'mkcert');
}
