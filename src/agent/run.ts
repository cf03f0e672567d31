import type { AgentOptions } from './options.js';
import { startAgent } from './agent.js';
import { readSwarmKey } from './swarmKey.js';

/**
 * `lo p2p agent` once its options are parsed (by the CLI, src/cli/commands/p2p.ts, or by the agent image's own
 * entry, src/agent/main.ts): starts the agent and resolves when SIGTERM or SIGINT has closed it.
 */
export async function runAgent(f: AgentOptions, logErr: (line: string) => void): Promise<void> {
  const log = f.quiet ? () => {} : (m: string) => logErr(`${new Date().toISOString()} ${m}`);
  const agent = await startAgent({
    port: f.port,
    routerPort: f.routerPort,
    metricsPort: f.metricsPort,
    dataPort: f.dataPort > 0 ? f.dataPort : undefined,
    host: f.host,
    publicHost: f.publicHost,
    psk: await readSwarmKey(f.key),
    bootstrap: f.peers,
    containerd: { address: f.containerd, namespace: f.namespace, contentDir: f.contentDir },
    resolveTimeoutMs: f.resolveTimeoutMs,
    resolveLatest: f.resolveLatest,
    resolveTags: f.resolveTags,
    registries: f.registries,
    uploadBytesPerSecond: f.uploadLimit,
    readvertiseMs: f.readvertise * 1000,
    log,
  });
  log(
    `lo p2p agent: registry on ${agent.url}, metrics on ${f.publicHost}:${f.metricsPort}, data port ${f.dataPort > 0 ? `${f.publicHost}:${f.dataPort}` : 'off'}, libp2p ${agent.router.addresses().join(' ')}`,
  );
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      void agent.close().finally(resolve);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
