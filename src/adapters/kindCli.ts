import { execa, type ExecaError } from 'execa';
import { shellCommand } from '../util/shell.js';
import { ExitCode, LoError } from '../errors/loError.js';
import { silentLog, type Log } from '../runtime/log.js';

/** kind's CLI, driven with execa. One method per kind command lo uses. */
export interface KindCli {
  getClusters(): Promise<string[]>;
  createCluster(opts: { name: string; configPath: string; kubeconfigPath: string; network: string }): Promise<void>;
  getNodes(name: string): Promise<string[]>;
  exportKubeconfig(name: string, kubeconfigPath: string): Promise<void>;
  deleteCluster(name: string, kubeconfigPath?: string): Promise<void>;
  version(): Promise<string>;
}

export interface KindCliOptions {
  bin?: string;
  env?: NodeJS.ProcessEnv;
  /** `kind create cluster` pulls a node image and boots it; give it time. */
  createTimeoutMs?: number;
  /** Every kind call is logged through it (`lo --verbose`). */
  log?: Log;
}

export class ToolError extends LoError {}

/** Turns an execa failure into a typed error: missing binary -> E_TOOL_MISSING, else the command and its stderr. */
export function toolError(tool: string, args: string[], err: unknown, installHint: string): LoError {
  const e = err as ExecaError & { code?: string };
  if (e?.code === 'ENOENT') {
    return new ToolError('E_TOOL_MISSING', `\`${tool}\` is not on PATH`, { hint: installHint, exitCode: ExitCode.failure, cause: err });
  }
  const stderr = String(e?.stderr ?? '').trim();
  const tail = stderr.split('\n').slice(-6).join('\n');
  return new ToolError(
    'E_STEP',
    `\`${shellCommand([tool, ...args])}\` failed${e?.exitCode !== undefined ? ` (exit ${e.exitCode})` : ''}${tail ? `:\n${tail}` : ''}`,
    {
      hint: `run the command by hand to see the whole output`,
      cause: err,
    },
  );
}

export const KIND_INSTALL_HINT = 'install kind: https://kind.sigs.k8s.io/docs/user/quick-start/#installation';

export function kindCli({ bin = 'kind', env = {}, createTimeoutMs = 10 * 60_000, log = silentLog }: KindCliOptions = {}): KindCli {
  const run = async (args: string[], extraEnv: Record<string, string> = {}, timeout = 60_000): Promise<string> => {
    try {
      const r = await log.call('run', `${bin} ${args.join(' ')}`, () =>
        execa(bin, args, { env: { ...env, ...extraEnv }, extendEnv: false, timeout, stdin: 'ignore' }),
      );
      return r.stdout;
    } catch (err) {
      throw toolError('kind', args, err, KIND_INSTALL_HINT);
    }
  };
  const lines = (out: string): string[] =>
    out
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
  return {
    // "No kind clusters found." goes to stderr, so stdout lists exactly the cluster names.
    getClusters: async () => lines(await run(['get', 'clusters'])),
    createCluster: async ({ name, configPath, kubeconfigPath, network }) => {
      await run(
        ['create', 'cluster', '--name', name, '--config', configPath, '--kubeconfig', kubeconfigPath],
        // kind puts nodes on this network instead of `kind` (https://github.com/kubernetes-sigs/kind/pull/2368).
        { KIND_EXPERIMENTAL_DOCKER_NETWORK: network },
        createTimeoutMs,
      );
    },
    getNodes: async (name) => lines(await run(['get', 'nodes', '--name', name])),
    exportKubeconfig: async (name, kubeconfigPath) => {
      await run(['export', 'kubeconfig', '--name', name, '--kubeconfig', kubeconfigPath]);
    },
    deleteCluster: async (name, kubeconfigPath) => {
      await run(['delete', 'cluster', '--name', name, ...(kubeconfigPath ? ['--kubeconfig', kubeconfigPath] : [])], {}, 5 * 60_000);
    },
    version: async () => (await run(['version'])).trim(),
  };
}
