import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, LoError, ExitCode } from '../errors/loError.js';
import { DEFAULT_DOMAIN, SPEC_FILE } from './constants.js';
import { BUILT_IN_SPEC, parseSpec } from './parseSpec.js';
import type { ClusterSpec } from './types.js';

export interface LoadSpecOptions {
  domain?: string;
  /** `--config FILE`: read this file instead of clusters/<domain>/cluster.lok8s.yaml. */
  config?: string;
  cwd?: string;
}

/** Where a domain's spec lives, relative to the working directory. */
function specPathFor(domain: string, cwd: string): string {
  return join(cwd, 'clusters', domain, SPEC_FILE);
}

/**
 * Reads a spec file (the only file I/O of config handling) and parses it.
 * lok8s.dev without a file falls back to the built-in default.
 */
export async function loadSpec(opts: LoadSpecOptions = {}): Promise<ClusterSpec> {
  const cwd = opts.cwd ?? process.cwd();
  if (opts.domain !== undefined && !/^[a-z0-9.-]+$/.test(opts.domain)) {
    throw new ConfigError([
      { file: '<command line>', path: 'domain', message: `"${opts.domain}" is not a domain`, hint: 'write e.g. lok8s.dev or 50.lok8s.dev' },
    ]);
  }
  const domain = opts.domain ?? (opts.config ? undefined : DEFAULT_DOMAIN);
  const file = opts.config ? resolve(cwd, opts.config) : specPathFor(domain!, cwd);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !opts.config && domain === DEFAULT_DOMAIN) {
      return parseSpec(BUILT_IN_SPEC, { file: `<built-in ${DEFAULT_DOMAIN}>`, domain });
    }
    if (code === 'ENOENT') {
      throw new LoError('E_CONFIG_NOT_FOUND', `no spec at ${file}`, {
        exitCode: ExitCode.badInput,
        hint: opts.config
          ? 'check the --config path'
          : `create clusters/${domain}/${SPEC_FILE} (copy clusters/${DEFAULT_DOMAIN}/${SPEC_FILE} ` +
            'and change metadata.name and spec.cluster.domain)',
      });
    }
    throw new LoError('E_CONFIG_NOT_FOUND', `cannot read ${file}: ${(err as Error).message}`, {
      exitCode: ExitCode.badInput,
      hint: 'check the file permissions',
      cause: err,
    });
  }
  return parseSpec(text, { file, domain });
}
