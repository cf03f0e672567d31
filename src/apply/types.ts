export type { Action } from './action.js';
import type { DockerClients } from '../adapters/docker/index.js';
import type { Plan } from '../plan/types.js';
import type { Log } from '../runtime/log.js';

/**
 * What the TLS step hands back (src/apply/tls/ensureTls.ts). Only the fields the registry apply reads are listed,
 * so any richer material fits.
 */
export interface TlsMaterial {
  caCertPem: string;
  certificates: Record<string, { id: string; certPath: string; keyPath: string; fingerprint: string; action: string }>;
}

export type EnsureTls = (plan: Plan, opts?: { now?: Date }) => Promise<TlsMaterial | null>;

export interface ApplyDeps {
  docker: DockerClients;
  /** Issues or reuses the CA and leaves; default: src/apply/tls/ensureTls.ts. */
  ensureTls?: EnsureTls;
  /** Credentials are read from here at write time (injected from main; default: none). */
  env?: NodeJS.ProcessEnv;
  /** The debug log (from main). */
  log?: Log;
  /** One line per step, for a spinner. */
  onProgress?: (step: string) => void;
  /**
   * Wait, bounded, until each registry container this apply created, recreated or started answers /v2/
   * (src/apply/waitServing.ts); absent: no wait (unit tests on the in-memory Docker).
   */
  serving?: { timeoutMs?: number; intervalMs?: number };
  /** The executor's stages as they start, finish or fail (provision shows them as its steps, with real times). */
  stages?: StageReporter;
}

/** The registry executor's stages, in order; `lo provision` runs them as its steps of the same names. */
export const REGISTRY_STAGE_NAMES = ['networks', 'tls', 'certs.d', 'registries'] as const;
export type RegistryStage = (typeof REGISTRY_STAGE_NAMES)[number];

export interface StageReporter {
  start(stage: RegistryStage): void;
  done(stage: RegistryStage): void;
  /** The stage whose work threw this error (reported before the error reaches the caller). */
  failed(stage: RegistryStage, err: unknown): void;
}
