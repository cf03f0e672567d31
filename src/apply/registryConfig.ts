import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ExitCode, LoError } from '../errors/loError.js';
import type { RegistryPlan } from '../plan/types.js';
import { createFileExclusive, SECRET_MODE } from './files.js';
import { renderRegistryConfig } from '../plan/render/renderRegistryConfig.js';

/**
 * The registry's config.yml as written to disk: rendered once from the plan's configInput and the upstream
 * credentials read from the environment variables the spec names. Secrets exist only in this string and the 0600 file, never in the
 * plan, a label or output.
 */
export function registryConfigWithSecrets(r: RegistryPlan, env: NodeJS.ProcessEnv): string {
  if (!r.credentials) return r.config;
  const { usernameEnv, passwordEnv, tokenEnv } = r.credentials;
  const names = [usernameEnv, passwordEnv, tokenEnv].filter((v): v is string => v !== undefined);
  const missing = names.filter((k) => !env[k]);
  if (missing.length > 0) {
    throw new LoError(
      'E_CONFIG',
      `mirror "${r.name}" needs credentials from ${missing.map((m) => `$${m}`).join(' and ')}, which ${missing.length === 1 ? 'is' : 'are'} not set`,
      {
        hint: `export ${missing.map((m) => `${m}=...`).join(' ')} and run again, or remove credentials from the mirror`,
        exitCode: ExitCode.badInput,
      },
    );
  }
  // A token is the password of registry:2's token-service login (distribution 2.8 has no other way to send
  // one); without usernameEnv the user name is TOKEN_USERNAME (docs/registries.md#private-registries).
  return renderRegistryConfig(r.configInput, {
    username: usernameEnv ? env[usernameEnv]! : TOKEN_USERNAME,
    password: env[(passwordEnv ?? tokenEnv)!]!,
  });
}

/** User name registry:2 logs in with when a mirror's credentials are only `tokenEnv`. */
export const TOKEN_USERNAME = 'token';

export function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The container's spec-hash label: plan hash + certificate + config file content, so a changed password,
 * certificate or rendering recreates the container. A config holding credentials is hashed with a per-user
 * secret key (`hashKey`): a plain hash in a label anyone with `docker inspect` reads would let a weak
 * password be guessed offline, since the rest of the config is predictable.
 */
export function containerSpecHash(planHash: string, certPem: string | null, configContent: string, hashKey?: Buffer): string {
  const config = hashKey ? createHmac('sha256', hashKey).update(configContent).digest('hex') : sha256(configContent);
  return sha256([planHash, certPem ? sha256(certPem) : '-', config].join('\n')).slice(0, 16);
}

const hashKeyPath = (stateDir: string): string => join(stateDir, 'hash.key');

/** The hash key, or null when none was made yet (then every hash made with it is new). */
export async function readHashKey(stateDir: string): Promise<Buffer | null> {
  try {
    return await readFile(hashKeyPath(stateDir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return null;
  }
}

/** `<stateDir>/hash.key`: 32 random bytes, 0600, created once (the first writer wins a race). */
export async function ensureHashKey(stateDir: string): Promise<Buffer> {
  const existing = await readHashKey(stateDir);
  if (existing) return existing;
  const path = hashKeyPath(stateDir);
  const key = randomBytes(32);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  return (await createFileExclusive(path, key, SECRET_MODE)) ? key : readFile(path);
}
