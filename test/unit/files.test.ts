import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFileExclusive, PUBLIC_MODE, SECRET_MODE, writeFileAtomic, writeIfChanged } from '../../src/apply/files.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lo-files-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const mode = (p: string): number => statSync(p).mode & 0o777;

describe('writeFileAtomic: the one file writer', () => {
  it('writes the exact mode whatever the umask, for secrets and for public files', async () => {
    const old = process.umask(0o077);
    try {
      await writeFileAtomic(join(dir, 'public.toml'), 'x\n', PUBLIC_MODE);
    } finally {
      process.umask(old);
    }
    const wide = process.umask(0o000);
    try {
      await writeFileAtomic(join(dir, 'secret.yml'), 'password: p\n', SECRET_MODE);
    } finally {
      process.umask(wide);
    }
    expect(mode(join(dir, 'public.toml'))).toBe(0o644);
    expect(mode(join(dir, 'secret.yml'))).toBe(0o600);
  });

  it('corrects the mode of an unchanged file without rewriting it', async () => {
    const f = join(dir, 'k');
    writeFileSync(f, 'same', { mode: 0o666 });
    const ino = statSync(f).ino;
    expect(await writeFileAtomic(f, 'same', SECRET_MODE)).toBe('noop');
    expect(mode(f)).toBe(0o600);
    expect(statSync(f).ino).toBe(ino);
  });

  it('writes bytes as well as text, and compares bytes', async () => {
    const f = join(dir, 'bin');
    const bytes = Buffer.from([0, 1, 2, 255]);
    expect(await writeFileAtomic(f, bytes, SECRET_MODE)).toBe('create');
    expect(readFileSync(f).equals(bytes)).toBe(true);
    expect(await writeFileAtomic(f, Buffer.from(bytes), SECRET_MODE)).toBe('noop');
    expect(await writeIfChanged(f, Buffer.from([9]), SECRET_MODE)).toBe(true);
  });

  it('a reader never sees a partial file while it is replaced', async () => {
    const f = join(dir, 'big');
    const a = 'a'.repeat(1 << 20);
    const b = 'b'.repeat(1 << 20);
    await writeFileAtomic(f, a, PUBLIC_MODE);
    let stop = false;
    const seen = new Set<string>();
    const reader = (async () => {
      for (let i = 0; i < 2000 && !stop; i++) {
        const text = readFileSync(f, 'utf8');
        seen.add(text === a ? 'a' : text === b ? 'b' : `partial ${text.length}`);
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (let i = 0; i < 6; i++) await writeFileAtomic(f, i % 2 ? a : b, PUBLIC_MODE);
    stop = true;
    await reader;
    expect([...seen].filter((s) => s.startsWith('partial'))).toEqual([]);
    expect(readFileSync(f, 'utf8')).toBe(a);
  });

  it('leaves no temp file behind when the write fails', async () => {
    const f = join(dir, 'fails');
    // Not text or bytes: the write into the temp file throws after it was created.
    await expect(writeFileAtomic(f, 42 as unknown as string, PUBLIC_MODE)).rejects.toThrow();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a directory in the way: an error, nothing written, no temp file', async () => {
    // a directory where the file should go: the rename cannot replace it
    const f = join(dir, 'occupied');
    mkdirSync(join(f, 'inner'), { recursive: true });
    await expect(writeFileAtomic(f, 'x', PUBLIC_MODE)).rejects.toThrow();
    expect(readdirSync(dir)).toEqual(['occupied']);
    expect(readdirSync(f)).toEqual(['inner']);
  });
});

describe('createFileExclusive', () => {
  it('creates complete files with the mode; the first of concurrent writers wins, the others change nothing', async () => {
    const f = join(dir, 'state', 'hash.key');
    const results = await Promise.all(['one', 'two', 'three', 'four'].map((t) => createFileExclusive(f, t, SECRET_MODE)));
    expect(results.filter(Boolean)).toHaveLength(1);
    const winner = ['one', 'two', 'three', 'four'][results.indexOf(true)];
    expect(readFileSync(f, 'utf8')).toBe(winner);
    expect(mode(f)).toBe(0o600);
    expect(await createFileExclusive(f, 'later', SECRET_MODE)).toBe(false);
    expect(readFileSync(f, 'utf8')).toBe(winner);
    expect(readdirSync(join(dir, 'state'))).toEqual(['hash.key']);
  });
});
