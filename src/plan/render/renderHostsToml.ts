import { stringify } from 'smol-toml';

/** One `[host."..."]` entry of a containerd hosts.toml, in order of preference. */
export interface HostEntry {
  url: string;
  capabilities: Array<'pull' | 'resolve' | 'push'>;
  /** CA file path as the node sees it; omitted for plain HTTP. */
  ca?: string;
  dialTimeout?: string;
  /** containerd uses `url`'s path as the API root as written (no `/v2` appended): `override_path = true`. */
  overridePath?: boolean;
  /** `skip_verify = true`: containerd does not verify the endpoint's certificate. */
  skipVerify?: boolean;
  /** Client certificate and key, as the node sees them: `client = [["cert", "key"]]`. */
  client?: { cert: string; key: string };
  /** Static headers; in the plan a value is a placeholder (headerPlaceholder), the executor puts in the secret. */
  header?: Record<string, string>;
}

export interface HostsTomlInput {
  /** Default endpoint tried after every host; omitted when the default endpoint is disabled. */
  server?: string;
  serverCa?: string;
  serverCapabilities?: Array<'pull' | 'resolve' | 'push'>;
  /** The server's other settings (an endpoint of the spec standing in for a disabled default endpoint). */
  serverEntry?: Omit<HostEntry, 'url' | 'capabilities' | 'ca'>;
  hosts: HostEntry[];
}

/**
 * The text a header value has in the plan and in `lo plan` output: the variable's name, never its value.
 * The executor replaces it with the value (src/apply/certsDir.ts) in the 0600 file it writes.
 */
export function headerPlaceholder(env: string): string {
  return `<from $${env}>`;
}

/** hosts.toml keys of one entry's settings (containerd docs/hosts.md). */
function settings(h: Omit<HostEntry, 'url' | 'capabilities'>): Record<string, unknown> {
  return {
    ...(h.ca ? { ca: h.ca } : {}),
    ...(h.client ? { client: [[h.client.cert, h.client.key]] } : {}),
    ...(h.skipVerify ? { skip_verify: true } : {}),
    ...(h.dialTimeout ? { dial_timeout: h.dialTimeout } : {}),
    ...(h.overridePath ? { override_path: true } : {}),
    ...(h.header && Object.keys(h.header).length > 0
      ? { header: Object.fromEntries(Object.entries(h.header).map(([k, v]) => [k, [v]])) }
      : {}),
  };
}

/**
 * Renders containerd's certs.d `hosts.toml` (https://github.com/containerd/containerd/blob/main/docs/hosts.md).
 * Hosts keep their order: containerd tries them in the order they appear, then `server`.
 */
export function renderHostsToml(input: HostsTomlInput): string {
  const doc: Record<string, unknown> = {};
  if (input.server) doc.server = input.server;
  if (input.server && input.serverCapabilities) doc.capabilities = input.serverCapabilities;
  if (input.server) Object.assign(doc, settings({ ...input.serverEntry, ...(input.serverCa ? { ca: input.serverCa } : {}) }));
  // containerd 1.6 rejects a hosts.toml without a [host] table ("invalid `host` tree") and then silently uses
  // the registry's default endpoint (for docker.io: the internet). Listing the server as the only host too
  // makes 1.6 and later read the same file the same way.
  const hosts: HostEntry[] =
    input.hosts.length === 0 && input.server
      ? [
          {
            ...input.serverEntry,
            url: input.server,
            capabilities: input.serverCapabilities ?? ['pull', 'resolve'],
            ...(input.serverCa ? { ca: input.serverCa } : {}),
          },
        ]
      : input.hosts;
  if (hosts.length > 0) {
    const host: Record<string, Record<string, unknown>> = {};
    for (const h of hosts) host[h.url] = { capabilities: h.capabilities, ...settings(h) };
    doc.host = host;
  }
  return `# Written by lo; changes are overwritten on the next \`lo provision\`.\n${stringify(doc)}\n`;
}
