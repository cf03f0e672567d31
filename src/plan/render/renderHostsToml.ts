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
}

export interface HostsTomlInput {
  /** Default endpoint tried after every host; omitted when the default endpoint is disabled. */
  server?: string;
  serverCa?: string;
  serverCapabilities?: Array<'pull' | 'resolve' | 'push'>;
  hosts: HostEntry[];
}

/**
 * Renders containerd's certs.d `hosts.toml` (https://github.com/containerd/containerd/blob/main/docs/hosts.md).
 * Hosts keep their order: containerd tries them in the order they appear, then `server`.
 */
export function renderHostsToml(input: HostsTomlInput): string {
  const doc: Record<string, unknown> = {};
  if (input.server) doc.server = input.server;
  if (input.server && input.serverCapabilities) doc.capabilities = input.serverCapabilities;
  if (input.server && input.serverCa) doc.ca = input.serverCa;
  // containerd 1.6 rejects a hosts.toml without a [host] table ("invalid `host` tree") and then silently uses
  // the registry's default endpoint (for docker.io: the internet). Listing the server as the only host too
  // makes 1.6 and later read the same file the same way.
  const hosts: HostEntry[] =
    input.hosts.length === 0 && input.server
      ? [
          {
            url: input.server,
            capabilities: input.serverCapabilities ?? ['pull', 'resolve'],
            ...(input.serverCa ? { ca: input.serverCa } : {}),
          },
        ]
      : input.hosts;
  if (hosts.length > 0) {
    const host: Record<string, Record<string, unknown>> = {};
    for (const h of hosts) {
      host[h.url] = {
        capabilities: h.capabilities,
        ...(h.ca ? { ca: h.ca } : {}),
        ...(h.dialTimeout ? { dial_timeout: h.dialTimeout } : {}),
        ...(h.overridePath ? { override_path: true } : {}),
      };
    }
    doc.host = host;
  }
  return `# Written by lo; changes are overwritten on the next \`lo provision\`.\n${stringify(doc)}\n`;
}
