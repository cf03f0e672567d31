import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

/**
 * A maker of temporary directories for one test file: each is removed by `hook` (vitest's afterAll unless
 * told, e.g. afterEach).
 */
export function tempDirs(hook: (fn: () => Promise<void>) => void = afterAll): (prefix: string) => Promise<string> {
  const dirs: string[] = [];
  hook(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });
  return async (prefix) => {
    const d = await mkdtemp(join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
}
