import { InvalidArgumentError, Option, type Command } from 'commander';
import { ExitCode, LoError } from '../errors/loError.js';

/**
 * The options of `lo p2p agent`, as one typed table. Both the commander options of the command
 * (src/cli/commands/p2p.ts) and the agent command line the planner writes into the plan
 * (src/plan/planP2P.ts) are generated from it, so the two cannot drift.
 */
export interface AgentOptions {
  port: number;
  routerPort: number;
  metricsPort: number;
  dataPort: number;
  host: string;
  publicHost: string;
  key: string;
  peers: string[];
  containerd: string;
  namespace: string;
  contentDir: string;
  resolveTimeoutMs: number;
  resolveLatest: boolean;
  resolveTags: string[];
  registries: string[];
  uploadLimit: number;
  readvertise: number;
  /** Image-name rewrites, JSON `{"<registry>": [["<regex>", "<replacement>"], ...]}` (`*`: every other registry). */
  rewrites: string;
  /** containerd's hosts directory as the agent sees it (the hosts.toml files rewritten names are forwarded by). */
  hostsDir: string;
  /** P2P off: no libp2p, no key, no data port; the registry port only forwards rewritten names. */
  forwardOnly: boolean;
  quiet: boolean;
}

type Kind = 'int' | 'string' | 'list' | 'bool';
type ValueOf<K extends Kind> = K extends 'int' ? number : K extends 'list' ? string[] : K extends 'bool' ? boolean : string;

interface OptionRow<K extends Kind> {
  kind: K;
  flag: string;
  /** Value placeholder in help, e.g. `<port>` (booleans have none). */
  arg?: string;
  short?: string;
  description: string;
  /** Environment variable that gives the default when set. */
  env?: string;
  default: ValueOf<K>;
}

type Table = {
  [P in keyof AgentOptions]: OptionRow<
    AgentOptions[P] extends number ? 'int' : AgentOptions[P] extends boolean ? 'bool' : AgentOptions[P] extends string[] ? 'list' : 'string'
  >;
};

export const AGENT_OPTIONS: Table = {
  port: {
    kind: 'int',
    flag: '--port',
    arg: '<port>',
    description: "OCI registry port the node's containerd uses (plan.p2p.port)",
    env: 'LO_P2P_PORT',
    default: 30020,
  },
  routerPort: {
    kind: 'int',
    flag: '--router-port',
    arg: '<port>',
    description: 'libp2p TCP port (plan.p2p.routerPort)',
    env: 'LO_P2P_ROUTER_PORT',
    default: 30021,
  },
  metricsPort: {
    kind: 'int',
    flag: '--metrics-port',
    arg: '<port>',
    description: 'Prometheus /metrics port (plan.p2p.metricsPort)',
    env: 'LO_P2P_METRICS_PORT',
    default: 30022,
  },
  dataPort: {
    kind: 'int',
    flag: '--data-port',
    arg: '<port>',
    description: 'TLS-PSK data port other agents pull from (plan.p2p.dataPort; 0: only the libp2p stream)',
    env: 'LO_P2P_DATA_PORT',
    default: 30023,
  },
  host: {
    kind: 'string',
    flag: '--host',
    arg: '<addr>',
    description: 'address the registry port listens on (loopback: only the node itself)',
    env: 'LO_P2P_HOST',
    default: '127.0.0.1',
  },
  publicHost: {
    kind: 'string',
    flag: '--public-host',
    arg: '<addr>',
    description: 'address the libp2p and metrics ports listen on',
    env: 'LO_P2P_PUBLIC_HOST',
    default: '0.0.0.0',
  },
  key: {
    kind: 'string',
    flag: '--key',
    arg: '<file>',
    description: 'the cluster swarm key (pre-shared key, 0600)',
    env: 'LO_P2P_KEY',
    default: '/etc/lo/p2p/swarm.key',
  },
  peers: {
    kind: 'list',
    flag: '--peers',
    arg: '<list>',
    description: 'other nodes: host:port or multiaddrs, comma separated (env LO_P2P_PEERS)',
    env: 'LO_P2P_PEERS',
    default: [],
  },
  containerd: {
    kind: 'string',
    flag: '--containerd',
    arg: '<address>',
    description: 'containerd socket path, unix:// URL or host:port',
    env: 'LO_P2P_CONTAINERD',
    default: '/run/containerd/containerd.sock',
  },
  namespace: {
    kind: 'string',
    flag: '--namespace',
    arg: '<ns>',
    description: 'containerd namespace',
    env: 'LO_P2P_NAMESPACE',
    default: 'k8s.io',
  },
  contentDir: {
    kind: 'string',
    flag: '--content-dir',
    arg: '<dir>',
    description: "containerd's content store directory (read directly when mounted)",
    env: 'LO_P2P_CONTENT_DIR',
    default: '/var/lib/containerd/io.containerd.content.v1.content',
  },
  resolveTimeoutMs: {
    kind: 'int',
    flag: '--resolve-timeout-ms',
    arg: '<ms>',
    description: 'answer 404 when no peer is found within this time',
    env: 'LO_P2P_RESOLVE_TIMEOUT_MS',
    default: 20,
  },
  resolveLatest: {
    kind: 'bool',
    flag: '--resolve-latest',
    description: 'also resolve tags named latest (off: latest comes from upstream)',
    env: 'LO_P2P_RESOLVE_LATEST',
    default: false,
  },
  resolveTags: {
    kind: 'list',
    flag: '--resolve-tags',
    arg: '<list>',
    description:
      'registries whose tags are taken from peers, comma separated, * for all (default: none: a tag comes from this node or 404, so containerd asks the mirror; digests always come from peers)',
    env: 'LO_P2P_RESOLVE_TAGS',
    default: [],
  },
  registries: {
    kind: 'list',
    flag: '--registries',
    arg: '<list>',
    description: 'registry names whose tags are advertised, comma separated (default: all)',
    env: 'LO_P2P_REGISTRIES',
    default: [],
  },
  uploadLimit: {
    kind: 'int',
    flag: '--upload-limit',
    arg: '<bytesPerSecond>',
    description: 'pace content served to other agents (0: unlimited)',
    env: 'LO_P2P_UPLOAD_LIMIT',
    default: 0,
  },
  readvertise: {
    kind: 'int',
    flag: '--readvertise',
    arg: '<seconds>',
    description: 're-announce held content this often',
    env: 'LO_P2P_READVERTISE',
    default: 1800,
  },
  rewrites: {
    kind: 'string',
    flag: '--rewrites',
    arg: '<json>',
    description:
      'image-name rewrites: JSON {"<registry>": [["<regex>", "<replacement>"], ...]}, first match wins, * for registries without a key of their own (docs/p2p.md)',
    env: 'LO_P2P_REWRITES',
    default: '',
  },
  hostsDir: {
    kind: 'string',
    flag: '--hosts-dir',
    arg: '<dir>',
    description: "containerd's hosts directory (<registry>/hosts.toml): where rewritten names are forwarded to",
    env: 'LO_P2P_HOSTS_DIR',
    default: '/etc/containerd/certs.d',
  },
  forwardOnly: {
    kind: 'bool',
    flag: '--forward-only',
    description: 'P2P off: no libp2p, no key, no data port; the registry port only forwards rewritten names',
    env: 'LO_P2P_FORWARD_ONLY',
    default: false,
  },
  quiet: { kind: 'bool', flag: '--quiet', short: '-q', description: 'no log lines on stderr', default: false },
};

const KEYS = Object.keys(AGENT_OPTIONS) as Array<keyof AgentOptions>;

function isCount(v: string): boolean {
  const n = Number(v);
  return v.trim() !== '' && Number.isInteger(n) && n >= 0;
}

/** A command-line value: commander reports the usage error (exit 2). */
function parseCount(v: string): number {
  if (!isCount(v)) throw new InvalidArgumentError(`must be a non-negative integer, got ${v}`);
  return Number(v);
}

const splitList = (v: string): string[] => v.split(/[\s,]+/).filter(Boolean);

function fromEnv(row: OptionRow<Kind>, env: NodeJS.ProcessEnv): unknown {
  const raw = row.env ? env[row.env] : undefined;
  if (raw === undefined) return row.default;
  if (row.kind === 'bool') return raw === 'true';
  if (row.kind === 'int') {
    if (!isCount(raw)) {
      throw new LoError('E_USAGE', `$${row.env} must be a non-negative integer (it sets ${row.flag}), got ${raw}`, {
        hint: `unset ${row.env} or set it to a number`,
        exitCode: ExitCode.badInput,
      });
    }
    return Number(raw);
  }
  if (row.kind === 'list') return splitList(raw);
  return raw;
}

/** Adds every agent option to a commander command; defaults come from the table and the given environment. */
export function addAgentOptions(cmd: Command, env: NodeJS.ProcessEnv): Command {
  for (const key of KEYS) {
    const row = AGENT_OPTIONS[key] as OptionRow<Kind>;
    const flags = `${row.short ? `${row.short}, ` : ''}${row.flag}${row.arg ? ` ${row.arg}` : ''}`;
    const opt = new Option(flags, row.description).default(fromEnv(row, env));
    if (row.kind === 'int') opt.argParser(parseCount);
    if (row.kind === 'list') opt.argParser((v: string) => splitList(v));
    cmd.addOption(opt);
  }
  return cmd;
}

/** The command line for these options, after `lo p2p agent`; options equal to their default are left out. */
export function agentArgv(opts: Partial<AgentOptions>): string[] {
  const argv: string[] = [];
  for (const key of KEYS) {
    const value = opts[key];
    if (value === undefined) continue;
    const row = AGENT_OPTIONS[key] as OptionRow<Kind>;
    if (row.kind === 'bool') {
      if (value) argv.push(row.flag);
    } else if (row.kind === 'list') {
      const list = value as string[];
      if (list.length > 0) argv.push(row.flag, list.join(','));
    } else if (row.kind === 'string' && value === '' && row.default === '') continue;
    else argv.push(row.flag, String(value));
  }
  return argv;
}
