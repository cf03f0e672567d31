import type { Command } from 'commander';
import { ensureSwarmKey, readSwarmKey } from '../../agent/swarmKey.js';
import { LoError } from '../../errors/loError.js';
import { logErr, printJson, printLine } from '../output.js';

interface AgentFlags {
  port: string;
  routerPort: string;
  host: string;
  key: string;
  peers?: string;
  containerd: string;
  namespace: string;
  contentDir: string;
  resolveTimeoutMs: string;
  resolveLatest?: boolean;
  registries?: string;
  uploadLimit?: string;
  readvertise: string;
  quiet?: boolean;
}

function int(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new LoError('E_USAGE', `--${name} must be a non-negative integer, got ${v}`, { exitCode: 2 });
  return n;
}

const list = (v: string | undefined): string[] => (v ?? '').split(/[\s,]+/).filter(Boolean);

export function registerP2P(program: Command): void {
  const p2p = program
    .command('p2p')
    .description('P2P node mirror: every node serves what its containerd holds to the others (see docs/p2p.md)');

  p2p
    .command('agent')
    .description(
      'Run the node agent: an OCI pull registry for containerd backed by the local content store and peers found in a private libp2p DHT',
    )
    .option('--port <port>', 'OCI registry port containerd uses (plan.p2p.port)', process.env.LO_P2P_PORT ?? '30020')
    .option('--router-port <port>', 'libp2p TCP port (plan.p2p.routerPort)', process.env.LO_P2P_ROUTER_PORT ?? '30021')
    .option('--host <addr>', 'address to listen on', process.env.LO_P2P_HOST ?? '0.0.0.0')
    .option('--key <file>', 'the cluster swarm key (pre-shared key, 0600)', process.env.LO_P2P_KEY ?? '/etc/lo/p2p/swarm.key')
    .option('--peers <list>', 'other nodes: host:port or multiaddrs, comma separated (env LO_P2P_PEERS)', process.env.LO_P2P_PEERS)
    .option(
      '--containerd <address>',
      'containerd socket path, unix:// URL or host:port',
      process.env.LO_P2P_CONTAINERD ?? '/run/containerd/containerd.sock',
    )
    .option('--namespace <ns>', 'containerd namespace', process.env.LO_P2P_NAMESPACE ?? 'k8s.io')
    .option(
      '--content-dir <dir>',
      "containerd's content store directory (read directly when mounted)",
      process.env.LO_P2P_CONTENT_DIR ?? '/var/lib/containerd/io.containerd.content.v1.content',
    )
    .option('--resolve-timeout-ms <ms>', 'answer 404 when no peer is found within this time', process.env.LO_P2P_RESOLVE_TIMEOUT_MS ?? '20')
    .option(
      '--resolve-latest',
      'also resolve tags named latest (off: latest comes from upstream)',
      process.env.LO_P2P_RESOLVE_LATEST === 'true',
    )
    .option(
      '--registries <list>',
      'registry names whose tags are advertised, comma separated (default: all)',
      process.env.LO_P2P_REGISTRIES,
    )
    .option('--upload-limit <bytesPerSecond>', 'pace content served to other agents (0: unlimited)', process.env.LO_P2P_UPLOAD_LIMIT ?? '0')
    .option('--readvertise <seconds>', 're-announce held content this often', process.env.LO_P2P_READVERTISE ?? '1800')
    .option('-q, --quiet', 'no log lines on stderr')
    .action(async (f: AgentFlags) => {
      const log = f.quiet ? () => {} : (m: string) => logErr(`${new Date().toISOString()} ${m}`);
      // libp2p and gRPC load only for the agent itself.
      const { startAgent } = await import('../../agent/agent.js');
      const agent = await startAgent({
        port: int('port', f.port),
        routerPort: int('router-port', f.routerPort),
        host: f.host,
        psk: await readSwarmKey(f.key),
        bootstrap: list(f.peers),
        containerd: { address: f.containerd, namespace: f.namespace, contentDir: f.contentDir },
        resolveTimeoutMs: int('resolve-timeout-ms', f.resolveTimeoutMs),
        resolveLatest: Boolean(f.resolveLatest),
        registries: list(f.registries),
        uploadBytesPerSecond: int('upload-limit', f.uploadLimit ?? '0'),
        readvertiseMs: int('readvertise', f.readvertise) * 1000,
        log,
      });
      log(`lo p2p agent: registry on :${f.port}, libp2p ${agent.router.addresses().join(' ')}`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          void agent.close().finally(resolve);
        };
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
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
