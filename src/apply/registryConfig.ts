import { createHash } from 'node:crypto';
import { parseDocument } from 'yaml';
import { ExitCode, LoError } from '../errors/LoError.js';
import type { RegistryPlan } from '../plan/types.js';

/**
 * The registry's config.yml as written to disk: the plan's rendering plus upstream credentials read from the
 * environment variables the spec names. Secrets exist only in this string and the 0600 file, never in the
 * plan, a label or output.
 */
export function registryConfigWithSecrets(r: RegistryPlan, env: NodeJS.ProcessEnv): string {
  if (!r.credentials) return r.config;
  const { usernameEnv, passwordEnv } = r.credentials;
  const missing = [usernameEnv, passwordEnv].filter((k) => !env[k]);
  if (missing.length > 0) {
    throw new LoError('E_CONFIG', `mirror "${r.name}" needs credentials from ${missing.map((m) => `$${m}`).join(' and ')}, which ${missing.length === 1 ? 'is' : 'are'} not set`, {
      hint: `export ${missing.map((m) => `${m}=...`).join(' ')} and run again, or remove credentials from the mirror`,
      exitCode: ExitCode.badInput,
    });
  }
  const doc = parseDocument(r.config);
  doc.setIn(['proxy', 'username'], env[usernameEnv]);
  doc.setIn(['proxy', 'password'], env[passwordEnv]);
  return doc.toString();
}

export function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The container's spec-hash label: plan hash + certificate + config file content. Hashes only (the config
 * may hold secrets), so a changed password, certificate or rendering recreates the container.
 */
export function containerSpecHash(planHash: string, certPem: string | null, configContent: string): string {
  return sha256([planHash, certPem ? sha256(certPem) : '-', sha256(configContent)].join('\n')).slice(0, 16);
}
