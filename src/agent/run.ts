import type { AgentOptions } from './options.js';
import { parseRewrites } from './forward/rewrites.js';

/**
 * `lo p2p agent` once its options are parsed (by the CLI, src/cli/commands/p2p.ts, or by the agent image's own
 * entry, src/agent/main.ts): starts the agent and resolves when SIGTERM or SIGINT has closed it.
 * With `--forward-only` (P2P off, rewrites on) neither libp2p, gRPC nor the swarm key is loaded.
 */
export async function runAgent(f: AgentOptions, logErr: (line: string) => void): Promise<void> {
  const log = f.quiet ? () => {} : (m: string) => logErr(`${new Date().toISOString()} ${m}`);
  // A bad rule is a start error (exit 2) naming it, before anything listens.
  const rewrites = parseRewrites(f.rewrites);
  if (f.forwardOnly) {
    // forwardAgent.ts imports none of libp2p, gRPC or the swarm key.
    const { startForwardAgent } = await import('./forwardAgent.js');
    const agent = await startForwardAgent({
      port: f.port,
      metricsPort: f.metricsPort,
      host: f.host,
      publicHost: f.publicHost,
      rewrites,
      hostsDir: f.hostsDir,
      log,
    });
    log(
      `lo p2p agent (forward only): registry on ${agent.url}, metrics on ${f.publicHost}:${f.metricsPort}, rewrites for ${[...rewrites.keys()].join(', ') || 'no registry'}, hosts from ${f.hostsDir}`,
    );
    return untilSignal(() => agent.close());
  }
  // libp2p and gRPC load only for the P2P agent itself.
  const [{ startAgent }, { readSwarmKey }] = await Promise.all([import('./agent.js'), import('./swarmKey.js')]);
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
    rewrites,
    hostsDir: f.hostsDir,
    log,
  });
  log(
    `lo p2p agent: registry on ${agent.url}, metrics on ${f.publicHost}:${f.metricsPort}, data port ${f.dataPort > 0 ? `${f.publicHost}:${f.dataPort}` : 'off'}, libp2p ${agent.router.addresses().join(' ')}`,
  );
  await untilSignal(() => agent.close());
}

/** Runs until SIGTERM or SIGINT, then closes. */
function untilSignal(close: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (): void => {
      void close().finally(resolve);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
