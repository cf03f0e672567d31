import { mkdir, readdir, readFile, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { stringify } from 'smol-toml';
import { ExitCode, LoError } from '../errors/loError.js';
import { headerPlaceholder } from '../plan/render/renderHostsToml.js';
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
  /** Endpoint TLS copies lo made (`<entry>/lo-<n>-…`) found in the directories lo wrote. */
  copies: string[];
}

/** What the tree's files hold when written: hosts.toml with their header values, the endpoint TLS copies. */
export type CertsDirContents = ReadonlyMap<string, string>;

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
  for (const f of plan.containerd.files) paths.add(f.path);
  const files: Record<string, string | null> = {};
  // An unreadable entry (a file, no permission) is not lo's: it reads as missing and is left alone.
  await Promise.all([...paths].map(async (p) => (files[p] = await readIfExists(p).catch(() => null))));
  const copies: string[] = [];
  for (const e of entries) {
    if (e === LO_DIR || !files[join(certsDir, e, 'hosts.toml')]?.startsWith(HOSTS_MARKER)) continue;
    for (const f of await readdir(join(certsDir, e)).catch(() => [] as string[])) if (COPY_NAME.test(f)) copies.push(join(certsDir, e, f));
  }
  return { entries, files, copies };
}

/** Names of the endpoint TLS files lo copies into a host directory (planContainerd). */
const COPY_NAME = /^lo-[0-9]+-(ca\.crt|client\.cert|client\.key)$/;

/** What a file of this content becomes when `want` is written. */
export function fileAction(have: string | null | undefined, want: string): Action['action'] {
  if (have === null || have === undefined) return 'create';
  return have === want ? 'noop' : 'recreate';
}

/**
 * What applying the certs.d part of the plan does to the tree as it is. Pure. `caCertPem` is the CA the copy
 * must hold; null with TLS on: the CA does not exist yet and is created at apply (the copy changes).
 */
export function diffCertsDir(plan: Plan, state: CertsDirState, caCertPem: string | null, contents: CertsDirContents = new Map()): Action[] {
  const { certsDir, hosts, caFile } = plan.containerd;
  const actions: Action[] = [
    ...hosts.map((h): Action => ({
      kind: 'file',
      name: h.path,
      action: fileAction(state.files[h.path], contents.get(h.path) ?? h.content),
    })),
    // Endpoint TLS files the spec names, copied next to the hosts.toml that names them (keys 0600).
    ...plan.containerd.files.map((f): Action => ({
      kind: 'file',
      name: f.path,
      action: fileAction(state.files[f.path], contents.get(f.path) ?? ''),
    })),
  ];
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
  // Copies lo made that the plan no longer names: in a directory that stays, and in one that goes.
  const wantedFiles = new Set(plan.containerd.files.map((f) => f.path));
  for (const c of state.copies)
    if (!wantedFiles.has(c)) actions.push({ kind: 'file', name: c, action: 'remove', reason: 'no longer in the plan' });
  return actions;
}

/**
 * Performs a certs.d diff in place: every hosts.toml (and the CA copy) written atomically, the stale host
 * directories the diff names removed. The certs.d directory itself is never replaced, so its inode stays and
 * nodes that bind-mount it keep seeing current files. Returns what it did.
 */
export async function executeCertsDir(
  plan: Plan,
  caCertPem: string | null,
  diff: readonly Action[],
  contents: CertsDirContents = new Map(),
): Promise<Action[]> {
  const { certsDir, hosts, caFile } = plan.containerd;
  await mkdir(certsDir, { recursive: true });
  const content = new Map<string, { data: string; mode: number }>(
    hosts.map((h) => [h.path, { data: contents.get(h.path) ?? h.content, mode: h.mode }]),
  );
  for (const f of plan.containerd.files) {
    const data = contents.get(f.path);
    if (data !== undefined) content.set(f.path, { data, mode: f.mode });
  }
  if (caFile && caCertPem !== null) content.set(caFile, { data: caCertPem, mode: PUBLIC_MODE });
  const done = await Promise.all(
    diff.map(async (a): Promise<Action | null> => {
      if (a.action === 'remove') {
        await rm(a.name, { force: true });
        return a;
      }
      const file = content.get(a.name);
      if (file === undefined) return null; // the CA copy without a CA (an injected TLS step made none)
      const action = a.name === caFile ? await writeCaCopy(a.name, file.data) : await writeFileAtomic(a.name, file.data, file.mode);
      return action === a.action ? a : { kind: 'file', name: a.name, action };
    }),
  );
  // Stale host directories, once their files are gone: kept when someone added files to them.
  const removedDirs = new Set(diff.filter((a) => a.action === 'remove').map((a) => dirname(a.name)));
  for (const dir of removedDirs)
    if (dir !== join(certsDir, LO_DIR) && !hosts.some((h) => dirname(h.path) === dir)) await rmdir(dir).catch(() => undefined);
  return done.filter((a): a is Action => a !== null);
}

/** Observe, diff and execute the certs.d tree in one go (for callers that apply nothing else). */
export async function applyCertsDir(plan: Plan, caCertPem: string | null, env: NodeJS.ProcessEnv = {}): Promise<Action[]> {
  const contents = await certsDirContents(plan, env);
  return executeCertsDir(plan, caCertPem, diffCertsDir(plan, await observeCertsDir(plan), caCertPem, contents), contents);
}

/**
 * The content of every certs.d file beyond the plan's text: each hosts.toml with its header placeholders
 * replaced by the variables' values, and each endpoint TLS copy read from the file the spec names. Read
 * before anything changes (a missing variable or file changes nothing); the values exist only here and in the
 * 0600 files, never in the plan, an action or output.
 */
export async function certsDirContents(plan: Plan, env: NodeJS.ProcessEnv): Promise<Map<string, string>> {
  const out = hostsFileContents(plan, env);
  await Promise.all(plan.containerd.files.map(async (f) => out.set(f.path, (await readSpecFile(f.source)).toString('utf8'))));
  return out;
}

/** A file the spec names, read when it is copied: a missing or unreadable one is a spec problem (exit 2). */
export async function readSpecFile(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new LoError('E_CONFIG', `cannot read ${path}, named in the spec: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, {
      exitCode: ExitCode.badInput,
      hint: 'check the tls.caFile / certFile / keyFile paths (relative to the spec file) and their permissions',
      cause: err,
    });
  }
}

/** Each hosts.toml with header values, by path (only those with headers; the rest are the plan's text). */
export function hostsFileContents(plan: Plan, env: NodeJS.ProcessEnv): Map<string, string> {
  const out = new Map<string, string>();
  for (const h of plan.containerd.hosts) {
    if (!h.headerEnv) continue;
    const missing = h.headerEnv.filter((v) => !env[v]);
    if (missing.length > 0)
      throw new LoError(
        'E_CONFIG',
        `containerd's ${h.host}/hosts.toml needs header values from ${missing.map((m) => `$${m}`).join(' and ')}, which ${missing.length === 1 ? 'is' : 'are'} not set`,
        {
          hint: `export ${missing.map((m) => `${m}=...`).join(' ')} (e.g. "Basic <base64 of user:password>" or "Bearer <token>") and run again`,
          exitCode: ExitCode.badInput,
        },
      );
    let content = h.content;
    for (const name of h.headerEnv) {
      const value = env[name]!;
      // eslint-disable-next-line no-control-regex
      if (/[\u0000-\u001f\u007f]/.test(value))
        throw new LoError('E_CONFIG', `$${name} holds a line break or control character, which an HTTP header value cannot`, {
          hint: `export ${name} as one line, e.g. "Bearer <token>"`,
          exitCode: ExitCode.badInput,
        });
      content = content.split(tomlString(headerPlaceholder(name))).join(tomlString(value));
    }
    out.set(h.path, content);
  }
  return out;
}

/** A TOML basic string, as smol-toml writes one. */
function tomlString(text: string): string {
  return stringify({ v: text }).slice('v = '.length).trim();
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
