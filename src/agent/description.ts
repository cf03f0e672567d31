/** `lo p2p agent`'s help line, shared by the CLI (src/cli/commands/p2p.ts) and the agent image's entry (main.ts). */
export const AGENT_DESCRIPTION =
  'Run the node agent: an OCI pull registry for containerd backed by the local content store and peers found in a private libp2p DHT';
