import type { LoadSpecOptions } from '../spec/loadSpec.js';
import type { PlanDeps } from '../usecases/plan.js';
import { resolvePaths } from '../runtime/paths.js';
import type { Log } from '../runtime/log.js';
import type { Output } from './output.js';

/** Options every command accepts (set on the root program). */
export interface GlobalOpts {
  config?: string;
  json?: boolean;
  verbose?: boolean;
}

export function specOptions(domain: string | undefined, g: GlobalOpts): LoadSpecOptions {
  // `--config ""` is passed on (and refused by loadSpec), not read as "no --config".
  return { ...(g.config !== undefined ? { config: g.config } : { domain: domain ?? 'lok8s.dev' }) };
}

/**
 * What main hands every command: the environment, the output streams, the debug log and the exit code
 * channel. Built once in src/cli/main.ts; nothing else reads process.env, writes process.stdout/stderr,
 * reads process.stdin or sets process.exitCode.
 */
export interface CliContext {
  env: NodeJS.ProcessEnv;
  /** stdout (results), stderr (progress, spinners, errors) and stdin (confirmations), injected by main. */
  out: Output;
  log: Log;
  /** A command that printed its result but must fail (e.g. `lo doctor` with a failed check) says so here. */
  setExitCode(code: number): void;
}

/** `--wait` on the commands that change a project: how long to wait for another lo holding its lock. */
export const LOCK_WAIT_MS = 600_000;
export const WAIT_FLAG = [
  '--wait',
  `when another lo is changing this project, wait for it to finish (up to ${LOCK_WAIT_MS / 60_000} min) instead of failing`,
] as const;
export const lockWait = (wait: boolean | undefined): { lockWaitMs?: number } => (wait ? { lockWaitMs: LOCK_WAIT_MS } : {});

/** Dependencies shared by commands; environment is read here, at the edge. */
export function commonDeps(ctx: CliContext): PlanDeps {
  const env = ctx.env;
  const extraLabels = env.LO_EXTRA_LABELS ? parseLabels(env.LO_EXTRA_LABELS) : undefined;
  return {
    paths: resolvePaths({ env }),
    env,
    log: ctx.log,
    ...(env.LO_REGISTRY_IMAGE ? { registryImage: env.LO_REGISTRY_IMAGE } : {}),
    ...(extraLabels ? { extraLabels } : {}),
    // Shared mirrors already running keep their addresses; `lo plan` falls back to "nothing observed" fast.
    // (loaded on use: registering commands for `lo --help` does not load the Docker code)
    observeShared: async (spec) => (await import('../usecases/registrySetup.js')).observeSharedOrNothing(env)(spec),
    warn: (message) => ctx.out.logErr(`warning ${message}`),
  };
}

/** `a=b,c=d` -> { a: 'b', c: 'd' } */
export function parseLabels(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split(',')
      .map((kv) => kv.trim())
      .filter(Boolean)
      .map((kv) => {
        const i = kv.indexOf('=');
        return i === -1 ? [kv, ''] : [kv.slice(0, i), kv.slice(i + 1)];
      }),
  );
}
