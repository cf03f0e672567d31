import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, rename, rm, chmod } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * The one file writer of lo. Every file lo writes (registry configs, hosts.toml, the CA copy, certificates
 * and keys, the swarm key, the hash key, the kind config, trust-store copies) goes through here.
 */
export type FileChange = 'create' | 'recreate' | 'noop';

/** Mode of files holding keys, secrets or credentials. */
export const SECRET_MODE = 0o600;
/** Mode of every other file lo writes. */
export const PUBLIC_MODE = 0o644;

/** The file's text, or null when it does not exist. Other errors (EACCES, EISDIR) are thrown. */
export async function readIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

async function readBytesIfExists(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * Writes `data` to a fresh temp file next to `path` (same directory, so the rename or link never crosses
 * filesystems), created exclusively (`wx`) with the final mode (chmod again: the umask may have narrowed or
 * widened it), synced to disk. Returns the temp path; the caller renames or links it into place.
 */
async function writeTemp(path: string, data: string | Uint8Array, mode: number): Promise<string> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.lo-tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  return tmp;
}

/** Makes the rename durable too (best effort: some filesystems refuse to sync a directory). */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => null);
  if (!fh) return;
  await fh.sync().catch(() => undefined);
  await fh.close();
}

/**
 * Writes `data` to `path` atomically: a registry or a node that has the directory mounted sees the old file
 * or the new one, never half of one. Leaves identical content untouched (same bytes, same inode and mtime;
 * only the mode is corrected). What a write would change is a diff's job (e.g. src/apply/certsDir.ts `fileAction`).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): Promise<FileChange> {
  const current = await readBytesIfExists(path);
  if (current !== null && current.equals(typeof data === 'string' ? Buffer.from(data) : data)) {
    await chmod(path, mode);
    return 'noop';
  }
  const change: FileChange = current === null ? 'create' : 'recreate';
  const tmp = await writeTemp(path, data, mode);
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dirname(path));
  return change;
}

/** As writeFileAtomic; true when it wrote. */
export async function writeIfChanged(path: string, data: string | Uint8Array, mode: number): Promise<boolean> {
  return (await writeFileAtomic(path, data, mode)) !== 'noop';
}

/**
 * Creates `path` with `data` unless it exists, atomically and race-free: the complete temp file is hard-linked
 * to the name, which fails when another process got there first. Returns false then (the first writer wins).
 */
export async function createFileExclusive(path: string, data: string | Uint8Array, mode: number): Promise<boolean> {
  const tmp = await writeTemp(path, data, mode);
  try {
    await link(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await rm(tmp, { force: true });
  }
  await syncDir(dirname(path));
  return true;
}
