import { accessSync, constants, statSync } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ConfigError, LoError, ExitCode } from '../errors/loError.js';
import { DEFAULT_DOMAIN, MAX_SPEC_BYTES, SPEC_FILE } from './constants.js';
import { shown, shownBare } from './display.js';
import { BUILT_IN_SPEC, decodeSpec, parseSpec } from './parseSpec.js';
import type { ClusterSpec } from './types.js';

export interface LoadSpecOptions {
  domain?: string;
  /** `--config FILE`: read this file instead of clusters/<domain>/cluster.lok8s.yaml. */
  config?: string;
  cwd?: string;
}

/** A domain argument: DNS labels (lower-case letters, digits, inner dashes) joined by dots; never `.` or `..`. */
const DOMAIN_ARG = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** Where a domain's spec lives, relative to the working directory. */
function specPathFor(domain: string, cwd: string): string {
  return join(cwd, 'clusters', domain, SPEC_FILE);
}

const badInput = (message: string, hint: string, cause?: unknown): LoError =>
  new LoError('E_CONFIG_NOT_FOUND', message, { exitCode: ExitCode.badInput, hint, ...(cause ? { cause } : {}) });

/**
 * Reads a spec file (the only file I/O of config handling) and parses it.
 * lok8s.dev without a file falls back to the built-in default.
 */
export async function loadSpec(opts: LoadSpecOptions = {}): Promise<ClusterSpec> {
  const cwd = opts.cwd ?? process.cwd();
  if (opts.domain !== undefined && (opts.domain.length > 253 || !DOMAIN_ARG.test(opts.domain))) {
    throw new ConfigError([
      {
        file: '<command line>',
        path: 'domain',
        message: `${shown(opts.domain)} is not a domain`,
        hint: 'write e.g. lok8s.dev or 50.lok8s.dev',
      },
    ]);
  }
  if (opts.config === '') throw badInput('--config is empty', 'name a spec file, e.g. --config clusters/lok8s.dev/cluster.lok8s.yaml');
  const domain = opts.domain ?? (opts.config !== undefined ? undefined : DEFAULT_DOMAIN);
  const file = opts.config !== undefined ? resolve(cwd, opts.config) : specPathFor(domain!, cwd);
  const where = shownBare(file);
  let bytes: Uint8Array;
  try {
    bytes = await readSpecFile(file);
  } catch (err) {
    if (err instanceof LoError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && opts.config === undefined && domain === DEFAULT_DOMAIN) {
      // The built-in default is the project of the directory its file would be in: committing that file
      // later (or deleting it) keeps the project id, so lo adopts its own objects instead of refusing them.
      const spec = parseSpec(BUILT_IN_SPEC, { file: `<built-in ${DEFAULT_DOMAIN}>`, domain });
      return { ...spec, specDir: await realDir(dirname(file)) };
    }
    if (code === 'ENOENT') {
      throw badInput(
        `no spec at ${where}`,
        opts.config !== undefined
          ? 'check the --config path'
          : `create clusters/${domain}/${SPEC_FILE} (copy clusters/${DEFAULT_DOMAIN}/${SPEC_FILE} ` +
              'and change metadata.name and spec.cluster.domain)',
      );
    }
    throw badInput(`cannot read ${where}: ${code ?? 'error'}`, 'check the path and the file permissions', err);
  }
  const spec = parseSpec(decodeSpec(bytes, file), { file, domain, baseDir: dirname(file), checkFile: readableFileProblem });
  // The real directory identifies the project (a symlinked path is the same project).
  return { ...spec, specDir: await realDir(dirname(file)) };
}

/** The real path of a directory; for one that does not exist (yet), its nearest existing parent's real path joined with the rest. */
async function realDir(dir: string): Promise<string> {
  try {
    return await realpath(dir);
  } catch {
    const parent = dirname(dir);
    return parent === dir ? dir : join(await realDir(parent), basename(dir));
  }
}

/**
 * Reads a regular file of at most MAX_SPEC_BYTES. stat first, so a directory, FIFO, socket or device is
 * refused before it is opened; then open with O_NONBLOCK (a FIFO swapped in after the stat cannot block),
 * check the opened file again, and read at most one byte past the limit (so /dev/zero cannot fill memory).
 */
async function readSpecFile(file: string): Promise<Uint8Array> {
  const where = shownBare(file);
  const check = (s: { isFile(): boolean; isDirectory(): boolean; size: number }): void => {
    if (!s.isFile()) {
      throw badInput(
        `${where} is ${s.isDirectory() ? 'a directory' : 'not a regular file (a FIFO, socket or device)'}`,
        'name a spec file (clusters/<domain>/cluster.lok8s.yaml)',
      );
    }
    if (s.size > MAX_SPEC_BYTES) throw tooLarge(where);
  };
  check(await stat(file));
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    check(await handle.stat());
    const buf = Buffer.alloc(MAX_SPEC_BYTES + 1);
    let size = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, size, buf.length - size, null);
      if (bytesRead === 0) break;
      size += bytesRead;
      if (size > MAX_SPEC_BYTES) throw tooLarge(where);
    }
    return buf.subarray(0, size);
  } finally {
    await handle.close();
  }
}

const tooLarge = (where: string): LoError =>
  badInput(`${where} is larger than ${MAX_SPEC_BYTES / 1024 / 1024} MiB; a spec is a few KiB`, 'check that --config names the spec file');

/** Why a file the spec names (a CA, a client certificate or key) cannot be read; undefined when it can. */
function readableFileProblem(path: string): string | undefined {
  try {
    const s = statSync(path);
    if (!s.isFile()) return s.isDirectory() ? 'is a directory' : 'is not a regular file';
    if (s.size > MAX_PEM_BYTES) return `is larger than ${MAX_PEM_BYTES / 1024} KiB; a PEM file is a few KiB`;
    accessSync(path, constants.R_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? 'does not exist'
      : code === 'EACCES'
        ? 'cannot be read (permission denied)'
        : `cannot be read (${code ?? 'error'})`;
  }
}

/** Largest CA bundle or key file lo copies (a system CA bundle is ~220 KiB). */
const MAX_PEM_BYTES = 1024 * 1024;
