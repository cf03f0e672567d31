import { join } from 'node:path';
import type { CertificateAuthority } from '../../apply/tls/ca.js';
import { readIfExists, writeFileAtomic } from '../../apply/files.js';
import { TlsError } from '../../apply/tls/tlsError.js';
import type { TrustItem } from './check.js';
import { samePem, trustFileName, type SystemStore, type TrustEnv } from './stores.js';

/** Installs the CA for one missing report item; false when the item is not one this host can install. */
export async function installItem(item: TrustItem, ca: CertificateAuthority, env: TrustEnv): Promise<boolean> {
  if (item.kind === 'docker') {
    await writeFileAtomic(item.target, ca.certPem, 0o644);
    return true;
  }
  if (item.kind === 'system' && env.systemStore) {
    await installSystem(ca, env.systemStore, env);
    return true;
  }
  return false;
}

/** Adds the CA to the keychain, or writes the anchor file and rebuilds the bundle. */
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
    const command = store.updateCommand.join(' ');
    throw new TlsError(`${command} failed (exit ${r.exitCode}): ${lastLines(r.output)}`, {
      file,
      hint: /denied|permission|EACCES/i.test(r.output) ? 'rerun with sudo' : `run ${command} yourself and check its output`,
    });
  }
}

/** The end of a command's output, on one line, for an error message. */
export function lastLines(output: string): string {
  return output.trim().split('\n').slice(-3).join(' ');
}
