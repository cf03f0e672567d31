import { once } from 'node:events';
import http, { type Server } from 'node:http';
import type { CID } from 'multiformats/cid';
import { ContainerdSource, type ContainerdSourceOptions } from './containerdSource.js';
import type { ContentSource, LocalTag } from './contentSource.js';
import { tagResolvable } from './ociPath.js';
import { digestKey, tagKey } from './keys.js';
import { dataKeyOf, startDataServer } from './dataPath.js';
import { Libp2pRouter } from './libp2pRouter.js';
import { createMetrics, type AgentMetrics } from './metrics.js';
import { createRegistryHandler, peerTagsFor, startRegistryServer } from './registry.js';
import { fetchOverHttp } from './registry/fetchOverHttp.js';
import { HOP_HEADER } from './registry/request.js';
import { metricsRoute } from './registry/routes.js';
import { createForwarder } from './forward/forwarder.js';
import type { RewriteTable } from './forward/rewrites.js';
import { portOf, selfOrigins, urlHost as hostOf } from './forwardAgent.js';

interface AgentOptions {
  /** OCI registry port (plan.p2p.port); containerd reaches it at http://127.0.0.1:<port>. */
  port: number;
  /** libp2p port (plan.p2p.routerPort). */
  routerPort: number;
  /** Prometheus `/metrics` port (plan.p2p.metricsPort). */
  metricsPort: number;
  /**
   * TLS-PSK data port (plan.p2p.dataPort, on publicHost): peers pull bodies over it, every agent of a cluster
   * on the same port. Absent: pulls go over the /lo/oci/1.0.0 stream only.
   */
  dataPort?: number;
  /** Where the registry port listens: loopback in the node's network namespace (only its containerd). */
  host?: string;
  /** Where the libp2p, data and metrics ports listen (default 0.0.0.0: the other nodes, and the user, reach them). */
  publicHost?: string;
  psk: Uint8Array;
  /** Other nodes' routers: host:port or multiaddrs. */
  bootstrap: string[];
  containerd?: ContainerdSourceOptions;
  resolveTimeoutMs: number;
  resolveLatest: boolean;
  /** Registries whose tags are taken from peers (`*`: all); only their tags are advertised. */
  resolveTags?: string[];
  /** Registry names whose tags are advertised (the mirrored ones, e.g. docker.io); empty: all. */
  registries: string[];
  /** Re-announce every key this often; kad-dht provider records live 48 h, lo re-announces well before. */
  readvertiseMs?: number;
  uploadBytesPerSecond?: number;
  peerTimeoutMs?: number;
  /** Image-name rewrites (--rewrites); names they change and this node and its peers lack are forwarded. */
  rewrites?: RewriteTable;
  /** containerd's hosts directory as the agent sees it (--hosts-dir): where rewritten names are forwarded to. */
  hostsDir?: string;
  log?: (msg: string) => void;
}

interface RunningAgent {
  url: string;
  metricsUrl: string;
  metrics: AgentMetrics;
  router: Libp2pRouter;
  server: Server;
  /** The TLS-PSK data port's server (null without dataPort). */
  dataServer: Server | null;
  /** Runs one advertise pass now (new content, and everything due for re-announcement). */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The tags worth announcing: those of the mirrored registries (all when none is listed) that a peer would
 * resolve (`latest` only with resolveLatest; only registries in resolveTags, `*` for all: otherwise no agent
 * ever asks peers for them).
 */
export function advertisedTags(
  tags: readonly LocalTag[],
  registries: readonly string[],
  resolveLatest: boolean,
  resolveTags: readonly string[] = ['*'],
): LocalTag[] {
  const trusted = peerTagsFor(resolveTags);
  return tags.filter(
    (t) => (registries.length === 0 || registries.includes(t.registry)) && trusted(t.registry) && tagResolvable(t.tag, resolveLatest),
  );
}

/**
 * Keeps the DHT in step with the content store: announces new digests and tags soon after containerd stores
 * them (events, debounced), everything again when a peer connects (earlier announcements may have reached
 * no one) and every `readvertiseMs`.
 */
class Advertiser {
  private last = new Map<string, number>();
  private running: Promise<void> | null = null;
  private again = false;
  private forceAll = false;

  constructor(
    private readonly source: ContentSource,
    private readonly router: Libp2pRouter,
    private readonly metrics: AgentMetrics,
    private readonly registries: string[],
    private readonly resolveLatest: boolean,
    private readonly resolveTags: string[],
    private readonly readvertiseMs: number,
    private readonly log: (msg: string) => void,
  ) {}

  async collect(): Promise<{ digests: Map<string, CID>; tags: Map<string, CID> }> {
    const digests = new Map<string, CID>();
    const tags = new Map<string, CID>();
    for (const d of await this.source.listDigests()) digests.set(d, digestKey(d));
    for (const t of advertisedTags(await this.source.listTags(), this.registries, this.resolveLatest, this.resolveTags))
      tags.set(`${t.registry}/${t.repository}:${t.tag}`, tagKey(t.registry, t.repository, t.tag));
    return { digests, tags };
  }

  /** Requests a pass; passes never overlap, and a request during a pass causes one more pass. */
  sync(all = false): Promise<void> {
    if (all) this.forceAll = true;
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        const force = this.forceAll;
        this.forceAll = false;
        try {
          await this.pass(force);
        } catch (err) {
          this.log(`advertise: ${(err as Error).message}`);
        }
      } while (this.again);
      this.running = null;
    })();
    return this.running;
  }

  private async pass(all: boolean): Promise<void> {
    const { digests, tags } = await this.collect();
    this.metrics.advertisedDigests.set(digests.size);
    this.metrics.advertisedTags.set(tags.size);
    const now = Date.now();
    const due: Array<[string, CID]> = [];
    for (const [name, key] of [...digests, ...tags]) {
      const at = this.last.get(name);
      if (all || at === undefined || now - at >= this.readvertiseMs) due.push([name, key]);
    }
    const current = new Set([...digests.keys(), ...tags.keys()]);
    for (const name of this.last.keys()) if (!current.has(name)) this.last.delete(name);
    if (due.length === 0 || this.router.peerCount() === 0) return;
    const r = await this.router.advertise(due.map(([, k]) => k));
    for (const [name] of due) this.last.set(name, now);
    this.log(`advertised ${r.ok} keys (${r.failed} failed) to ${this.router.peerCount()} peers`);
  }
}

export async function startAgent(opts: AgentOptions, deps: { source?: ContentSource } = {}): Promise<RunningAgent> {
  const log = opts.log ?? (() => {});
  const metrics = createMetrics();
  const source = deps.source ?? new ContainerdSource({ ...opts.containerd, log });
  const host = opts.host ?? '127.0.0.1';
  const publicHost = opts.publicHost ?? '0.0.0.0';
  const dataKey = opts.dataPort !== undefined ? dataKeyOf(opts.psk) : null;
  const router = await Libp2pRouter.start({
    port: opts.routerPort,
    psk: opts.psk,
    bootstrap: opts.bootstrap,
    host: publicHost,
    log,
    ...(dataKey ? { data: { port: opts.dataPort!, key: dataKey } } : {}),
    onFetch: (transport) => metrics.peerFetches.inc({ transport }),
  });
  // The registry port is known once it listens (0 in tests); the forwarder reads its own origins through `self`.
  const self: string[] = [];
  const forwarder =
    opts.rewrites && opts.rewrites.size > 0
      ? createForwarder({ hostsDir: opts.hostsDir ?? '/etc/containerd/certs.d', self, metrics, log })
      : null;
  const registryOptions = {
    source,
    router,
    metrics,
    resolveTimeoutMs: opts.resolveTimeoutMs,
    resolveLatest: opts.resolveLatest,
    resolveTags: opts.resolveTags ?? [],
    uploadBytesPerSecond: opts.uploadBytesPerSecond,
    peerTimeoutMs: opts.peerTimeoutMs,
    log,
    ...(forwarder ? { rewrites: { table: opts.rewrites!, forwarder, metrics } } : {}),
  };
  const registry = createRegistryHandler(registryOptions);
  const server = await startRegistryServer({ ...registryOptions, port: opts.port, host, handler: registry });
  const port = portOf(server, opts.port);
  self.push(...selfOrigins(host, port));
  // Peers' pulls arrive on the /lo/oci/1.0.0 stream and are answered by this registry with the hop header,
  // so from its local content only (a peer never relays onward).
  const local = `http://${hostOf(host)}:${port}`;
  await router.serve((req, signal) => fetchOverHttp(local, req, opts.peerTimeoutMs ?? 3000, signal, { [HOP_HEADER]: '1' }));
  // Pulls on the data port (TLS with a key derived from the swarm key) go to the same registry, in process.
  const dataServer = dataKey ? await startDataServer({ host: publicHost, port: opts.dataPort!, key: dataKey, registry }) : null;
  const metricsServer = http.createServer((req, res) => {
    if (req.method === 'GET' && new URL(req.url ?? '/', 'http://agent').pathname === '/metrics') return metricsRoute(res, metrics);
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('only /metrics here\n');
  });
  metricsServer.listen(opts.metricsPort, publicHost);
  await once(metricsServer, 'listening');
  const readvertiseMs = opts.readvertiseMs ?? 30 * 60_000;
  const adv = new Advertiser(source, router, metrics, opts.registries, opts.resolveLatest, opts.resolveTags ?? [], readvertiseMs, log);

  let debounce: NodeJS.Timeout | null = null;
  const soon = (all: boolean, ms: number): void => {
    if (debounce) clearTimeout(debounce);
    debounce = setTimeout(() => void adv.sync(all), ms);
  };
  const unwatch = source.watch((topic) => soon(topic === 'resubscribed', 100));
  router.onPeerConnect(() => soon(true, 300));
  const peerGauge = setInterval(() => metrics.peers.set(router.peerCount()), 1000);
  const periodic = setInterval(() => void adv.sync(false), Math.min(readvertiseMs / 4, 60_000));
  peerGauge.unref();
  periodic.unref();
  void adv.sync(true);

  return {
    url: local,
    metricsUrl: `http://${hostOf(publicHost)}:${portOf(metricsServer, opts.metricsPort)}/metrics`,
    metrics,
    router,
    server,
    dataServer,
    sync: () => adv.sync(false),
    async close() {
      clearInterval(peerGauge);
      clearInterval(periodic);
      if (debounce) clearTimeout(debounce);
      unwatch();
      forwarder?.close();
      for (const s of [server, metricsServer, ...(dataServer ? [dataServer] : [])]) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
      await router.stop();
      await source.close();
    },
  };
}
