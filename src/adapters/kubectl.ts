import { execa } from 'execa';
import { toolError } from './kindCli.js';
import { silentLog, type Log } from '../runtime/log.js';

export const KUBECTL_INSTALL_HINT = 'install kubectl: https://kubernetes.io/docs/tasks/tools/';

/** kubectl, driven with execa against one kubeconfig. */
export interface Kubectl {
  /** The ConfigMap's data, or null when it does not exist. */
  getConfigMapData(namespace: string, name: string): Promise<Record<string, string> | null>;
  /** `kubectl apply -f -` with a YAML stream on stdin. */
  apply(yaml: string): Promise<string>;
  version(): Promise<string>;
}

export interface KubectlOptions {
  kubeconfig: string;
  bin?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Every kubectl call is logged through it (`lo --verbose`). */
  log?: Log;
}

export function kubectl({ kubeconfig, bin = 'kubectl', env = {}, timeoutMs = 60_000, log = silentLog }: KubectlOptions): Kubectl {
  const run = async (args: string[], input?: string): Promise<{ stdout: string; stderr: string; exitCode: number }> => {
    const full = ['--kubeconfig', kubeconfig, ...args];
    try {
      const r = await log.call('run', `${bin} ${full.join(' ')}`, () =>
        execa(bin, full, {
          env,
          extendEnv: false,
          timeout: timeoutMs,
          reject: false,
          ...(input !== undefined ? { input } : { stdin: 'ignore' as const }),
        }),
      );
      if (r.failed && r.exitCode === undefined) throw r;
      return { stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode ?? 1 };
    } catch (err) {
      throw toolError('kubectl', full, err, KUBECTL_INSTALL_HINT);
    }
  };
  /** kubectl's stdout; a non-zero exit is a tool error with kubectl's stderr, naming `shown` (default: the arguments). */
  const output = async (args: string[], o: { input?: string; shown?: string[] } = {}): Promise<string> => {
    const r = await run(args, o.input);
    if (r.exitCode !== 0)
      throw toolError(
        'kubectl',
        o.shown ?? args,
        Object.assign(new Error(r.stderr), { stderr: r.stderr, exitCode: r.exitCode }),
        KUBECTL_INSTALL_HINT,
      );
    return r.stdout;
  };
  return {
    getConfigMapData: async (namespace, name) => {
      const out = await output(['get', 'configmap', name, '--namespace', namespace, '--output', 'json', '--ignore-not-found']);
      if (!out.trim()) return null;
      return (JSON.parse(out) as { data?: Record<string, string> }).data ?? {};
    },
    apply: (yaml) => output(['apply', '--filename', '-'], { input: yaml }),
    version: async () => {
      const out = await output(['version', '--client', '--output', 'json'], { shown: ['version', '--client'] });
      try {
        return (JSON.parse(out) as { clientVersion?: { gitVersion?: string } }).clientVersion?.gitVersion ?? out.trim();
      } catch {
        return out.trim();
      }
    },
  };
}
