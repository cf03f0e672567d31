import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ensureSwarmKey, readSwarmKey } from '../../agent/swarmKey.js';
import { addAgentOptions, type AgentOptions } from '../../agent/options.js';

export function registerP2P(program: Command, ctx: CliContext): void {
  const { logErr, printJson, printLine } = ctx.out;
  const p2p = program
    .command('p2p')
    .description('P2P node mirror: every node serves what its containerd holds to the others (see docs/p2p.md)');

  const agentCmd = p2p
    .command('agent')
    .description(
      'Run the node agent: an OCI pull registry for containerd backed by the local content store and peers found in a private libp2p DHT',
    );
  // The options come from one table (src/agent/options.ts), which also builds the agent command line in the plan.
  addAgentOptions(agentCmd, ctx.env).action(async (f: AgentOptions) => {
    const log = f.quiet ? () => {} : (m: string) => logErr(`${new Date().toISOString()} ${m}`);
    // A bad rule is a start error (exit 2) naming it, before anything listens.
    const { parseRewrites } = await import('../../agent/forward/rewrites.js');
    const rewrites = parseRewrites(f.rewrites);
    if (f.forwardOnly) {
      // P2P off: no libp2p, gRPC or swarm key is loaded (forwardAgent.ts imports none of them).
      const { startForwardAgent } = await import('../../agent/forwardAgent.js');
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
    // libp2p and gRPC load only for the agent itself.
    const { startAgent } = await import('../../agent/agent.js');
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
  });

  p2p
    .command('key')
    .description('Create the cluster swarm key at <file> (0600) unless it exists')
    .argument('<file>', 'where to write the key')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      const { created } = await ensureSwarmKey(file);
      if (o.json) printJson({ path: file, created });
      else printLine(`${created ? 'created' : 'kept'} ${file}`);
    });
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
