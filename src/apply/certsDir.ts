import { mkdir, readdir, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Plan } from '../plan/types.js';
import { PUBLIC_MODE, readIfExists, writeFileAtomic } from './files.js';
import { isPermissionError, TlsError } from './tls/tlsError.js';
import type { Action } from './types.js';

/** First line of every hosts.toml lo renders; marks the directories lo may remove when they go stale. */
export const HOSTS_MARKER = '# Written by lo';
const LO_DIR = '_lo';

/** The certs.d tree as it is: the content of every file lo writes or may remove there (null: missing). */
export interface CertsDirState {
  /** Entries of the certs.d directory (none when it does not exist). */
  entries: string[];
  files: Record<string, string | null>;
}

/** Reads the certs.d tree (the plan's hosts.toml files, the CA copy, every entry's hosts.toml); changes nothing. */
export async function observeCertsDir(plan: Plan): Promise<CertsDirState> {
  const { certsDir, hosts, caFile } = plan.containerd;
  let entries: string[] = [];
  try {
    entries = await readdir(certsDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const paths = new Set([
    ...hosts.map((h) => h.path),
    caFile ?? join(certsDir, LO_DIR, 'ca.crt'),
    ...entries.filter((e) => e !== LO_DIR).map((e) => join(certsDir, e, 'hosts.toml')),
  ]);
  const files: Record<string, string | null> = {};
  // An unreadable entry (a file, no permission) is not lo's: it reads as missing and is left alone.
  await Promise.all([...paths].map(async (p) => (files[p] = await readIfExists(p).catch(() => null))));
  return { entries, files };
}

/** What a file of this content becomes when `want` is written. */
export function fileAction(have: string | null | undefined, want: string): Action['action'] {
  if (have === null || have === undefined) return 'create';
  return have === want ? 'noop' : 'recreate';
}

/**
 * What applying the certs.d part of the plan does to the tree as it is. Pure. `caCertPem` is the CA the copy
 * must hold; null with TLS on: the CA does not exist yet and is created at apply (the copy changes).
 */
export function diffCertsDir(plan: Plan, state: CertsDirState, caCertPem: string | null): Action[] {
  const { certsDir, hosts, caFile } = plan.containerd;
  const actions: Action[] = hosts.map((h) => ({ kind: 'file', name: h.path, action: fileAction(state.files[h.path], h.content) }));
  const loCa = join(certsDir, LO_DIR, 'ca.crt');
  if (caFile && caCertPem !== null) {
    // The only writer of the CA copy (ensureTls leaves it to this step), so a first run reports `create`.
    actions.push({ kind: 'file', name: caFile, action: fileAction(state.files[caFile], caCertPem) });
  } else if (caFile) {
    const have = state.files[caFile] ?? null;
    actions.push(
      have === null
        ? { kind: 'file', name: caFile, action: 'create' }
        : { kind: 'file', name: caFile, action: 'recreate', reason: 'a new CA is made at apply' },
    );
  } else if ((state.files[loCa] ?? null) !== null) {
    actions.push({ kind: 'file', name: loCa, action: 'remove', reason: 'TLS is off' });
  }
  const wanted = new Set(hosts.map((h) => h.host));
  for (const entry of state.entries) {
    if (entry === LO_DIR || wanted.has(entry)) continue;
    const file = join(certsDir, entry, 'hosts.toml');
    if (!state.files[file]?.startsWith(HOSTS_MARKER)) continue; // not ours: leave it
    actions.push({ kind: 'file', name: file, action: 'remove', reason: 'no longer in the plan' });
  }
  return actions;
}

/**
 * Performs a certs.d diff in place: every hosts.toml (and the CA copy) written atomically, the stale host
 * directories the diff names removed. The certs.d directory itself is never replaced, so its inode stays and
 * nodes that bind-mount it keep seeing current files. Returns what it did.
 */
export async function executeCertsDir(plan: Plan, caCertPem: string | null, diff: readonly Action[]): Promise<Action[]> {
  const { certsDir, hosts, caFile } = plan.containerd;
  await mkdir(certsDir, { recursive: true });
  const content = new Map<string, string>(hosts.map((h) => [h.path, h.content]));
  if (caFile && caCertPem !== null) content.set(caFile, caCertPem);
  const done = await Promise.all(
    diff.map(async (a): Promise<Action | null> => {
      if (a.action === 'remove') {
        await rm(a.name, { force: true });
        // a stale host directory: keep it when someone added files to it
        if (dirname(a.name) !== join(certsDir, LO_DIR)) await rmdir(dirname(a.name)).catch(() => undefined);
        return a;
      }
      const data = content.get(a.name);
      if (data === undefined) return null; // the CA copy without a CA (an injected TLS step made none)
      const action = a.name === caFile ? await writeCaCopy(a.name, data) : await writeFileAtomic(a.name, data, PUBLIC_MODE);
      return action === a.action ? a : { kind: 'file', name: a.name, action };
    }),
  );
  return done.filter((a): a is Action => a !== null);
}

/** Observe, diff and execute the certs.d tree in one go (for callers that apply nothing else). */
export async function applyCertsDir(plan: Plan, caCertPem: string | null): Promise<Action[]> {
  return executeCertsDir(plan, caCertPem, diffCertsDir(plan, await observeCertsDir(plan), caCertPem));
}

async function writeCaCopy(caFile: string, pem: string): Promise<Action['action']> {
  try {
    return await writeFileAtomic(caFile, pem, PUBLIC_MODE);
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
