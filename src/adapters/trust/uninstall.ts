import { readdir, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { CertificateAuthority } from '../../apply/tls/ca.js';
import { readIfExists } from '../../apply/files.js';
import { TlsError } from '../../apply/tls/tlsError.js';
import type { TrustItem, TrustReport } from './check.js';
import { lastLines } from './install.js';
import { canWrite, trustFileName, type TrustEnv } from './stores.js';

/**
 * What `lo trust --uninstall` removes for this CA: the system store file (or keychain entry) when present,
 * and each Docker certs.d/<host>/ca.crt that holds this CA. Files holding another CA are left alone.
 */
export async function removalItems(ca: CertificateAuthority, current: TrustReport, env: TrustEnv): Promise<TrustItem[]> {
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
  return items;
}

/** Whether removing these items needs root we do not have. */
export async function removalNeedsRoot(items: TrustItem[], env: TrustEnv): Promise<boolean> {
  const writable = await Promise.all(
    items.map((i) =>
      env.systemStore?.kind === 'keychain' && i.kind === 'system' ? Promise.resolve(env.isRoot) : canWrite(dirname(i.target), env.isRoot),
    ),
  );
  return writable.some((w) => !w);
}

/** Removes one item of removalItems(). */
export async function removeItem(item: TrustItem, ca: CertificateAuthority, env: TrustEnv): Promise<void> {
  const store = env.systemStore;
  if (item.kind === 'docker') {
    await rm(item.target, { force: true });
    // Drop the host directory when lo's ca.crt was all it held.
    if ((await readdir(dirname(item.target)).catch(() => ['?'])).length === 0) await rmdir(dirname(item.target)).catch(() => undefined);
  } else if (store?.kind === 'anchors') {
    await rm(item.target, { force: true });
    const cmd = store.removeCommand ?? store.updateCommand;
    const r = await env.run(cmd);
    if (r.exitCode !== 0)
      throw new TlsError(`${cmd.join(' ')} failed (exit ${r.exitCode}): ${lastLines(r.output)}`, {
        file: item.target,
        hint: `run ${cmd.join(' ')} yourself and check its output`,
      });
  } else if (store?.kind === 'keychain') {
    const r = await env.run(['security', 'remove-trusted-cert', '-d', ca.certPath]);
    if (r.exitCode !== 0)
      throw new TlsError(`security remove-trusted-cert failed: ${r.output.trim()}`, { file: store.keychain, hint: 'rerun with sudo' });
  }
}
