import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The agent's Prometheus metrics, on a registry of its own (several agents may share a process in tests). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'lo_p2p_' });
  return {
    registry,
    requests: new Counter({
      name: 'lo_p2p_requests_total',
      help:
        'OCI requests by route (manifest, blob, base), source (local, peer, upstream, none) and result ' +
        '(ok, not-found, tag-policy, digest-mismatch, peer-failed, error, rewrite-nomatch, rewrite-no-hosts, failed)',
      labelNames: ['route', 'source', 'result'] as const,
      registers: [registry],
    }),
    resolveDuration: new Histogram({
      name: 'lo_p2p_resolve_duration_seconds',
      help: 'Time from a DHT lookup to the first provider (or to giving up)',
      labelNames: ['kind', 'found'] as const,
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    bytesServed: new Counter({
      name: 'lo_p2p_bytes_served_total',
      help: 'Body bytes sent, by source: local (from this node, to containerd or to a peer), peer (relayed) or upstream (a rewritten name forwarded)',
      labelNames: ['source'] as const,
      registers: [registry],
    }),
    peerFailovers: new Counter({
      name: 'lo_p2p_peer_failovers_total',
      help: 'Fetches from a peer that failed and moved on to the next peer (or gave up)',
      registers: [registry],
    }),
    advertisedDigests: new Gauge({
      name: 'lo_p2p_advertised_digests',
      help: 'Digests this node advertises in the DHT',
      registers: [registry],
    }),
    advertisedTags: new Gauge({
      name: 'lo_p2p_advertised_tags',
      help: 'Tags of mirrored registries this node advertises',
      registers: [registry],
    }),
    peerFetches: new Counter({
      name: 'lo_p2p_peer_fetches_total',
      help: 'Requests sent to peers, by transport: data (the TLS-PSK data port) or stream (/lo/oci/1.0.0 over libp2p)',
      labelNames: ['transport'] as const,
      registers: [registry],
    }),
    forwards: new Counter({
      name: 'lo_p2p_forwards_total',
      help:
        'Requests for a rewritten image name, by registry and result: ok, not-found (every host 404), failed (502), ' +
        'no-hosts, rewrite-nomatch (no rule matched: 404, containerd goes on unchanged), aborted, status-<code>',
      labelNames: ['registry', 'result'] as const,
      registers: [registry],
    }),
    peers: new Gauge({ name: 'lo_p2p_peers', help: 'Connected libp2p peers', registers: [registry] }),
  };
}

export type AgentMetrics = ReturnType<typeof createMetrics>;
