import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export type FileChange = 'create' | 'recreate' | 'noop';

export async function readIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * Writes `content` to `path` atomically (temp file in the same directory, then rename), so a registry or a
 * node that has the directory mounted sees the old file or the new one, never half of one. Leaves an
 * identical file untouched (same bytes, same mtime). `dryRun` only reports what would change.
 */
export async function writeFileAtomic(path: string, content: string, mode: number, dryRun = false): Promise<FileChange> {
  const current = await readIfExists(path);
  if (current === content) {
    if (!dryRun) await chmod(path, mode);
    return 'noop';
  }
  if (dryRun) return current === null ? 'create' : 'recreate';
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${randomBytes(6).toString('hex')}.lo-tmp`);
  try {
    await writeFile(tmp, content, { mode, flag: 'wx' });
    await chmod(tmp, mode); // the umask may have narrowed or widened the mode
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return current === null ? 'create' : 'recreate';
}
