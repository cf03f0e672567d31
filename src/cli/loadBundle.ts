import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Script } from 'node:vm';

/*
 * How bin/lo.js starts the CLI bundle (dist/bundle/lo.cjs, scripts/bundle.js) with V8's code cache: Node 20 has
 * no module.enableCompileCache (22.1), so the bundle is one CommonJS file compiled through vm.Script with
 * cachedData, the way v8-compile-cache does it. After a successful run the functions V8 compiled for that
 * command are written to the cache; the next run of the command skips parsing and compiling them (bench/cli.js
 * measures both). This module must stay small and use only Node built-ins: it runs before the bundle.
 *
 * Cache layout: <cacheRoot>/v8/<bundle sha256 (12)>-<node version>-<arch>/<command>.bin, each file the sha256 of
 * its payload (32 bytes) then V8's cached data. A file whose digest does not match (truncated, corrupted) is
 * ignored and rewritten; V8 itself rejects data made for another source or V8 version. Files are written
 * atomically (a temporary file renamed over), the directory 0700; nothing in them is secret, but code that
 * others could write is never loaded. Old builds' directories beyond the newest few are removed.
 */

/** Cache directories of other builds (other lo or Node versions) kept beside the current one. */
const KEEP_BUILDS = 3;
const DIGEST_BYTES = 32;

export interface CacheEnv {
  env: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
  home?: string;
}

/**
 * `$XDG_CACHE_HOME/lo` (macOS: ~/Library/Caches/lo); undefined when LO_COMPILE_CACHE=0 turns the cache off, and
 * under sudo (`sudo lo trust`): HOME may still be the user's, and root's files there would lock the user out.
 */
export function compileCacheRoot({ env, platform = process.platform, home = homedir() }: CacheEnv): string | undefined {
  if (env.LO_COMPILE_CACHE === '0' || env.SUDO_UID) return undefined;
  if (platform === 'darwin') return join(home, 'Library', 'Caches', 'lo');
  return join(env.XDG_CACHE_HOME || join(home, '.cache'), 'lo');
}

/**
 * Commands made of subcommands that run different code (`registry up` and `registry status`): each subcommand has
 * its own cache file, or the first one run would leave the others compiling what it did not run, for good.
 * test/unit/loadBundle.test.ts checks this list against the program.
 */
export const WITH_SUBCOMMANDS: ReadonlySet<string> = new Set(['images', 'p2p', 'registries', 'registry']);

/**
 * The cache file's name for this command line: its first word when it looks like a command (`registry-up` for a
 * subcommand of WITH_SUBCOMMANDS), `other` when it does not, `root` without one.
 */
export function cacheName(argv: readonly string[]): string {
  const args = argv.slice(2);
  const word = /^[a-z][a-z0-9]{0,31}$/;
  let command: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-c' || a === '--config') i++;
    else if (a.startsWith('-')) continue;
    else if (command !== undefined) return word.test(a) ? `${command}-${a}` : command;
    else if (!word.test(a)) return 'other';
    else if (!WITH_SUBCOMMANDS.has(a)) return a;
    else command = a;
  }
  return command ?? 'root';
}

/**
 * The command lines the light bundle runs (dist/bundle/lo-light.cjs, scripts/bundle.js: without the code only other
 * commands use), by cacheName: `lo plan ...` and `lo` with options only (`--help`, `--version`).
 */
export const LIGHT_COMMANDS: ReadonlySet<string> = new Set(['plan', 'root']);

/** The bundle file bin/lo.js runs for this command line: `lo-light.cjs` or `lo.cjs`. */
export function bundleFileFor(argv: readonly string[]): string {
  return LIGHT_COMMANDS.has(cacheName(argv)) ? 'lo-light.cjs' : 'lo.cjs';
}

/** The payload when `file` holds one whose digest matches, else undefined. */
export function readCacheFile(file: string): Buffer | undefined {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch {
    return undefined;
  }
  if (data.length <= DIGEST_BYTES) return undefined;
  const payload = data.subarray(DIGEST_BYTES);
  return createHash('sha256').update(payload).digest().equals(data.subarray(0, DIGEST_BYTES)) ? payload : undefined;
}

/** Writes digest + payload atomically (temporary file in the same directory, then rename). */
export function writeCacheFile(file: string, payload: Buffer): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  try {
    writeFileSync(tmp, Buffer.concat([createHash('sha256').update(payload).digest(), payload]), { mode: 0o600 });
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Removes build directories under `v8Dir` other than `current`, beyond the `keep` most recently written. */
export function pruneBuilds(v8Dir: string, current: string, keep = KEEP_BUILDS): void {
  const others = readdirSync(v8Dir)
    .filter((d) => d !== current)
    .map((d) => ({ d, t: statSync(join(v8Dir, d)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { d } of others.slice(keep)) rmSync(join(v8Dir, d), { recursive: true, force: true });
}

export interface LoadedBundle {
  /** The bundle's exports (src/cli/main.ts). */
  exports: { main(argv: string[]): Promise<number> };
  /** Whether V8 used cached data for this run. */
  cacheHit: boolean;
  /** Call after a successful run: writes the cache when it was missing or rejected. Never throws. */
  save(): void;
}

export interface LoadBundleOptions {
  /** dist/bundle/lo.cjs or lo-light.cjs (bundleFileFor) */
  bundle: string;
  /** compileCacheRoot(...), undefined for no cache */
  cacheRoot: string | undefined;
  argv: readonly string[];
  /** An ES module import done outside the vm.Script (bin/lo.js passes `(url) => import(url)`). */
  importModule: (url: string) => Promise<unknown>;
}

/**
 * Compiles and runs the CommonJS bundle as Node's own loader would (the module wrapper, a require that resolves
 * from the bundle's directory), with cached data when there is valid data for it.
 */
export function loadBundle({ bundle, cacheRoot, argv, importModule }: LoadBundleOptions): LoadedBundle {
  const req = createRequire(bundle);
  if (!cacheRoot) return { exports: req(bundle) as LoadedBundle['exports'], cacheHit: false, save: () => {} };

  // latin1: the bundle is ASCII (esbuild escapes the rest; scripts/bundle.js checks), and one byte per character
  // is read without UTF-8 decoding.
  const source = readFileSync(bundle, 'latin1');
  // The build writes the bundle's digest beside it (scripts/bundle.js); without it, size and mtime stand in.
  let id: string;
  try {
    id = readFileSync(`${bundle}.sha256`, 'utf8').trim().slice(0, 12);
  } catch {
    const s = statSync(bundle);
    id = `${s.size}-${Math.floor(s.mtimeMs)}`;
  }
  const v8Dir = join(cacheRoot, 'v8');
  const build = `${id}-${process.version}-${process.arch}`;
  const file = join(v8Dir, build, `${cacheName(argv)}.bin`);
  const cachedData = readCacheFile(file);
  // Node's module wrapper plus __loImport: an import() inside a vm.Script made from cached data has no loader in
  // Node 20 (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING), so the bundle imports ESM through the caller's import().
  const script = new Script(`(function (exports, require, module, __filename, __dirname, __loImport) {${source}\n})`, {
    filename: bundle,
    ...(cachedData ? { cachedData } : {}),
  });
  const mod = { exports: {} as LoadedBundle['exports'] };
  (script.runInThisContext() as (...a: unknown[]) => void).call(mod.exports, mod.exports, req, mod, bundle, dirname(bundle), importModule);
  const cacheHit = Boolean(cachedData) && !script.cachedDataRejected;
  return {
    exports: mod.exports,
    cacheHit,
    save() {
      if (cacheHit) return;
      try {
        writeCacheFile(file, script.createCachedData());
        pruneBuilds(v8Dir, basename(dirname(file)));
      } catch {
        // a cache that cannot be written (read-only home, full disk) only costs speed
      }
    },
  };
}
