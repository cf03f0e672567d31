import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Every file and directory under the roots with mode, size, mtime and inode (a dry run must leave them all). */
export function fileTree(...roots: string[]): string[] {
  return roots.flatMap((root) =>
    existsSync(root)
      ? readdirSync(root, { recursive: true, encoding: 'utf8' })
          .sort()
          .map((f) => {
            const st = statSync(join(root, f));
            return `${root}/${f} ${st.mode.toString(8)} ${st.size} ${st.mtimeMs} ${st.ino}`;
          })
      : [],
  );
}
