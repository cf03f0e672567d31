import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errnoCode } from './tlsError.js';

/**
 * Writes a file atomically: a temp file in the same directory (so rename never crosses filesystems),
 * created with its final mode so a key is never readable by others even for a moment, then renamed.
 */
export async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    // open() applies the umask; set the exact mode (0400/0600 keys, 0644 certificates).
    await chmod(tmp, mode);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** The file's text, or null when it does not exist. Other errors (EACCES, EISDIR) are thrown. */
export async function readIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null;
    throw err;
  }
}

/** Writes only when the content differs, so an unchanged file keeps its bytes and mtime. Returns whether it wrote. */
export async function writeIfChanged(path: string, data: string, mode: number): Promise<boolean> {
  const current = await readIfExists(path);
  if (current === data) return false;
  await writeFileAtomic(path, data, mode);
  return true;
}
