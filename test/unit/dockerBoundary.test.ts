import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = new URL('../../src/', import.meta.url).pathname;

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

// import ... from 'dockerode', import type ..., import('dockerode'), require('dockerode'), export ... from
const DOCKERODE = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|\bimport\s+)['"]dockerode(?:\/[^'"]*)?['"]/;

describe('Docker behind one adapter', () => {
  it('only src/adapters/docker/ imports dockerode', () => {
    const files = tsFiles(SRC);
    const importers = files.filter((f) => DOCKERODE.test(readFileSync(f, 'utf8'))).map((f) => relative(SRC, f));
    // the guard itself must see the adapter's imports, or it could never fail
    expect(importers).toContain('adapters/docker/client.ts');
    expect(importers.filter((f) => !f.startsWith('adapters/docker/'))).toEqual([]);
  });

  it('the pattern catches every import form', () => {
    for (const line of [
      "import Docker from 'dockerode';",
      'import type Docker from "dockerode";',
      "const D = await import('dockerode');",
      "export { default } from 'dockerode';",
      "import 'dockerode';",
      "import x from 'dockerode/lib/container';",
    ])
      expect(DOCKERODE.test(line), line).toBe(true);
    expect(DOCKERODE.test("import { x } from './dockerodeLike.js';")).toBe(false);
  });
});
