import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tempDirs } from '../support/tempDirs.js';
import {
  bundleFileFor,
  cacheName,
  compileCacheRoot,
  pruneBuilds,
  readCacheFile,
  WITH_SUBCOMMANDS,
  writeCacheFile,
} from '../../src/cli/loadBundle.js';

const newTempDir = tempDirs(afterEach);
const tempDir = (): Promise<string> => newTempDir('lo-loadbundle-');

/** A CommonJS "bundle" with some code to compile, a main, and an ESM import through __loImport as the real one does. */
function writeFixture(dir: string, marker = 'one'): string {
  const esm = join(dir, 'agent.mjs');
  writeFileSync(esm, `export const who = 'esm-${marker}';\n`);
  const fns = Array.from({ length: 200 }, (_, i) => `function f${i}(x) { return x.map((y) => y * ${i} + ${i}).filter(Boolean).length; }`);
  const bundle = join(dir, 'lo.cjs');
  writeFileSync(
    bundle,
    [
      ...fns,
      `const url = ${JSON.stringify(pathToFileURL(esm).href)};`,
      "const load = () => (typeof __loImport === 'function' ? __loImport(url) : import(url));",
      'exports.main = async (argv) => { let n = 0; for (let i = 0; i < 200; i++) n += eval("f" + i)([1, 2, 3]); return n > 0 ? 0 : 1; };',
      `exports.marker = ${JSON.stringify(marker)};`,
      'exports.dirname = __dirname;',
      'exports.agent = async () => (await load()).who;',
      '',
    ].join('\n'),
  );
  return bundle;
}

const argv = ['node', 'lo', 'plan', '--json'];

describe('compileCacheRoot and cacheName', () => {
  it('follows XDG_CACHE_HOME, ~/.cache, macOS Caches; LO_COMPILE_CACHE=0 and sudo turn it off', () => {
    expect(compileCacheRoot({ env: { XDG_CACHE_HOME: '/x' }, platform: 'linux', home: '/h' })).toBe('/x/lo');
    expect(compileCacheRoot({ env: {}, platform: 'linux', home: '/h' })).toBe('/h/.cache/lo');
    expect(compileCacheRoot({ env: {}, platform: 'darwin', home: '/h' })).toBe('/h/Library/Caches/lo');
    expect(compileCacheRoot({ env: { LO_COMPILE_CACHE: '0', XDG_CACHE_HOME: '/x' }, platform: 'linux', home: '/h' })).toBeUndefined();
    expect(compileCacheRoot({ env: { SUDO_UID: '1000' }, platform: 'linux', home: '/h' })).toBeUndefined(); // sudo lo trust
  });
  it('names the cache after the command word, never after a path or a value', () => {
    expect(cacheName(['node', 'lo'])).toBe('root');
    expect(cacheName(['node', 'lo', '--help'])).toBe('root');
    expect(cacheName(['node', 'lo', '-c', 'x.yaml', 'registry', 'status'])).toBe('registry-status');
    expect(cacheName(['node', 'lo', 'registry', 'up', '--json'])).toBe('registry-up');
    expect(cacheName(['node', 'lo', 'registry', '--help'])).toBe('registry');
    expect(cacheName(['node', 'lo', 'registry', 'Up/../x'])).toBe('registry');
    expect(cacheName(['node', 'lo', 'plan', 'lokal'])).toBe('plan'); // an argument, not a subcommand
    expect(cacheName(['node', 'lo', '--config', 'plan', 'plan'])).toBe('plan');
    expect(cacheName(['node', 'lo', '../../etc/passwd'])).toBe('other');
  });
});

describe('bundleFileFor', () => {
  it('the light bundle for plan and option-only command lines, the whole one for every other command', () => {
    for (const args of [
      [],
      ['--help'],
      ['-V'],
      ['--version'],
      ['plan'],
      ['plan', '--json', '--hosts'],
      ['-c', 'x.yaml', 'plan'],
      ['plan', '--help'],
    ])
      expect(bundleFileFor(['node', 'lo', ...args]), args.join(' ')).toBe('lo-light.cjs');
    for (const args of [['registry', 'up'], ['provision'], ['help', 'plan'], ['-c', 'plan', 'doctor'], ['p2p', 'agent'], ['../x']])
      expect(bundleFileFor(['node', 'lo', ...args]), args.join(' ')).toBe('lo.cjs');
  });
});

describe('WITH_SUBCOMMANDS', () => {
  it('names exactly the commands made of subcommands', async () => {
    const { buildProgram } = await import('../../src/cli/main.js');
    const program = await buildProgram();
    const withSubs = program.commands.filter((c) => c.commands.some((s) => s.name() !== 'help')).map((c) => c.name());
    expect(withSubs.length).toBeGreaterThan(0);
    expect([...WITH_SUBCOMMANDS].sort()).toEqual(withSubs.sort());
  });
});

describe('cache files', () => {
  it('round-trip; a flipped byte, a truncated or an empty file is ignored', async () => {
    const d = await tempDir();
    const f = join(d, 'sub', 'x.bin');
    const payload = Buffer.from('cached code '.repeat(100));
    writeCacheFile(f, payload);
    expect(statSync(f).mode & 0o777).toBe(0o600);
    expect(statSync(join(d, 'sub')).mode & 0o777).toBe(0o700);
    expect(readCacheFile(f)?.equals(payload)).toBe(true);
    expect(readdirSync(join(d, 'sub'))).toEqual(['x.bin']); // no temporary file left
    const bytes = readFileSync(f);
    bytes[bytes.length - 5] ^= 0xff;
    writeFileSync(f, bytes);
    expect(readCacheFile(f)).toBeUndefined();
    writeFileSync(f, bytes.subarray(0, 40));
    expect(readCacheFile(f)).toBeUndefined();
    writeFileSync(f, '');
    expect(readCacheFile(f)).toBeUndefined();
    expect(readCacheFile(join(d, 'missing.bin'))).toBeUndefined();
  });

  it('pruneBuilds keeps the current build and the newest others', async () => {
    const d = await tempDir();
    for (const [i, name] of ['a', 'b', 'c', 'd', 'e'].entries()) {
      mkdirSync(join(d, name));
      utimesSync(join(d, name), 1000 + i, 1000 + i);
    }
    pruneBuilds(d, 'a', 2);
    expect(readdirSync(d).sort()).toEqual(['a', 'd', 'e']);
  });
});

/*
 * Each load runs in its own Node process, as bin/lo.js does: inside one process V8's in-memory compilation cache
 * would serve the second compile and never read the cached data.
 */
const REPO = resolve(import.meta.dirname, '..', '..');
const LOADER = join(REPO, 'dist', 'cli', 'loadBundle.js');
const run = promisify(execFile);
beforeAll(async () => {
  if (!existsSync(LOADER)) await run('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: REPO });
}, 120_000);

interface Loaded {
  cacheHit: boolean;
  code: number;
  marker: string;
  dirname: string;
  agent: string;
}
async function load(bundle: string, cacheRoot: string | undefined): Promise<Loaded> {
  const script = [
    `import { loadBundle } from ${JSON.stringify(pathToFileURL(LOADER).href)};`,
    `const b = loadBundle({ bundle: ${JSON.stringify(bundle)}, cacheRoot: ${JSON.stringify(cacheRoot)}, argv: ${JSON.stringify(argv)}, importModule: (u) => import(u) });`,
    'const code = await b.exports.main([]);',
    'b.save();',
    'console.log(JSON.stringify({ cacheHit: b.cacheHit, code, marker: b.exports.marker, dirname: b.exports.dirname, agent: await b.exports.agent() }));',
  ].join('\n');
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
  return JSON.parse(stdout) as Loaded;
}

describe('loadBundle (one process per load)', () => {
  it('compiles from source first, writes the cache after a run, and uses it next time', async () => {
    const d = await tempDir();
    const bundle = writeFixture(d);
    const cacheRoot = join(d, 'cache');
    const first = await load(bundle, cacheRoot);
    expect(first).toMatchObject({ cacheHit: false, code: 0 });
    const [build] = readdirSync(join(cacheRoot, 'v8'));
    expect(build).toMatch(new RegExp(`-${process.version.replace(/\./g, '\\.')}-${process.arch}$`));
    expect(readdirSync(join(cacheRoot, 'v8', build!))).toEqual(['plan.bin']);
    // compiled from the cache; an ES module import from that code works (the agent's path in the real bundle)
    expect(await load(bundle, cacheRoot)).toEqual({ cacheHit: true, code: 0, marker: 'one', dirname: d, agent: 'esm-one' });
  });

  it('a corrupted cache file is ignored and rewritten; data V8 does not accept is rejected', async () => {
    const d = await tempDir();
    const bundle = writeFixture(d);
    const cacheRoot = join(d, 'cache');
    await load(bundle, cacheRoot);
    const [build] = readdirSync(join(cacheRoot, 'v8'));
    const file = join(cacheRoot, 'v8', build!, 'plan.bin');
    const bytes = readFileSync(file);
    for (let i = 100; i < bytes.length; i += 97) bytes[i] ^= 0x5a;
    writeFileSync(file, bytes);
    expect(await load(bundle, cacheRoot)).toMatchObject({ cacheHit: false, code: 0 });
    expect(await load(bundle, cacheRoot)).toMatchObject({ cacheHit: true, code: 0 }); // rewritten by the run before
    // a whole file (its digest matches) that is not V8's data for this source: V8 rejects it
    writeCacheFile(file, Buffer.from('not V8 cached data '.repeat(50)));
    expect(await load(bundle, cacheRoot)).toMatchObject({ cacheHit: false, code: 0, agent: 'esm-one' });
    expect(await load(bundle, cacheRoot)).toMatchObject({ cacheHit: true });
  });

  it('a new build (another digest) never uses the old build’s cache', async () => {
    const d = await tempDir();
    const bundle = writeFixture(d, 'one');
    const cacheRoot = join(d, 'cache');
    writeFileSync(`${bundle}.sha256`, 'aaaaaaaaaaaa\n');
    await load(bundle, cacheRoot);
    writeFixture(d, 'two');
    writeFileSync(`${bundle}.sha256`, 'bbbbbbbbbbbb\n');
    expect(await load(bundle, cacheRoot)).toMatchObject({ cacheHit: false, marker: 'two', agent: 'esm-two' });
    const tail = `-${process.version}-${process.arch}`;
    expect(readdirSync(join(cacheRoot, 'v8')).sort()).toEqual([`aaaaaaaaaaaa${tail}`, `bbbbbbbbbbbb${tail}`]);
  });

  it('without a cache root it loads the bundle with require and writes nothing', async () => {
    const d = await tempDir();
    const bundle = writeFixture(d, 'plain');
    expect(await load(bundle, undefined)).toMatchObject({ cacheHit: false, code: 0, agent: 'esm-plain' });
    expect(readdirSync(d).sort()).toEqual(['agent.mjs', 'lo.cjs']);
  });
});
