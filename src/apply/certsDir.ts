import { mkdir, readdir, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Plan } from '../plan/types.js';
import { PUBLIC_MODE, readIfExists, writeFileAtomic } from './files.js';
import { isPermissionError, TlsError } from './tls/tlsError.js';
import type { Action } from './types.js';

/** First line of every hosts.toml lo renders; marks the directories lo may remove when they go stale. */
export const HOSTS_MARKER = '# Written by lo';
const LO_DIR = '_lo';

/**
 * Writes the containerd certs.d tree in place: every hosts.toml (and the CA copy) atomically, stale host
 * directories lo wrote earlier removed. The certs.d directory itself is never replaced, so its inode stays
 * and nodes that bind-mount it keep seeing current files.
 */
export async function applyCertsDir(plan: Plan, caCertPem: string | null, dryRun: boolean): Promise<Action[]> {
  const { certsDir, hosts, caFile } = plan.containerd;
  if (!dryRun) await mkdir(certsDir, { recursive: true });
  const actions: Action[] = await Promise.all(
    hosts.map(async (h) => ({
      kind: 'file' as const,
      name: h.path,
      action: await writeFileAtomic(h.path, h.content, PUBLIC_MODE, dryRun),
    })),
  );
  const loCa = join(certsDir, LO_DIR, 'ca.crt');
  if (caFile && caCertPem) {
    // The only writer of the CA copy (ensureTls leaves it to this step), so a first run reports `create`.
    actions.push({ kind: 'file', name: caFile, action: await writeCaCopy(caFile, caCertPem, dryRun) });
  } else if (caFile && !caCertPem) {
    // dry run before the CA exists
    actions.push({
      kind: 'file',
      name: caFile,
      action: (await readIfExists(caFile)) === null ? 'create' : 'noop',
      reason: 'CA copy, checked at apply',
    });
  } else if ((await readIfExists(loCa)) !== null) {
    if (!dryRun) await rm(loCa, { force: true });
    actions.push({ kind: 'file', name: loCa, action: 'remove', reason: 'TLS is off' });
  }

  const wanted = new Set(hosts.map((h) => h.host));
  let entries: string[] = [];
  try {
    entries = await readdir(certsDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  for (const entry of entries) {
    if (entry === LO_DIR || wanted.has(entry)) continue;
    const file = join(certsDir, entry, 'hosts.toml');
    const content = await readIfExists(file).catch(() => null);
    if (content === null || !content.startsWith(HOSTS_MARKER)) continue; // not ours: leave it
    if (!dryRun) {
      await rm(file, { force: true });
      await rmdir(join(certsDir, entry)).catch(() => undefined); // keep a directory someone added files to
    }
    actions.push({ kind: 'file', name: file, action: 'remove', reason: 'no longer in the plan' });
  }
  return actions;
}

async function writeCaCopy(caFile: string, pem: string, dryRun: boolean): Promise<Action['action']> {
  try {
    return await writeFileAtomic(caFile, pem, PUBLIC_MODE, dryRun);
  } catch (err) {
    if (!isPermissionError(err)) throw err;
    const dir = dirname(caFile);
    throw new TlsError(`cannot copy the CA into ${dir}: ${(err as Error).message}`, {
      file: dir,
      cause: err,
      hint: `fix the permissions of ${dir} (lo's state directory; set LO_STATE_DIR to move it)`,
    });
  }
}
