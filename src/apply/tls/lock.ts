import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import lockfile from 'proper-lockfile';
import { errnoCode } from './tlsError.js';

/** How long to wait for another lo run holding the lock before giving up. */
const WAIT_MS = 60_000;
const STALE_MS = 20_000;

/**
 * Runs `fn` holding an inter-process lock on `path` (a `<path>.lock` directory next to it). Two
 * `lo registry up` runs at once must not both create a CA or pair one run's certificate with the other
 * run's key. Stale locks (a crashed run) are taken over after 20 s. Only "locked" is retried: any other
 * error (EACCES on a read-only directory) is thrown at once.
 */
export async function withFileLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(dirname(path), { recursive: true });
  const deadline = Date.now() + WAIT_MS;
  let delay = 25;
  let release: () => Promise<void>;
  for (;;) {
    try {
      release = await lockfile.lock(path, { realpath: false, stale: STALE_MS, retries: 0 });
      break;
    } catch (err) {
      if (errnoCode(err) !== 'ELOCKED' || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 500);
    }
  }
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}
