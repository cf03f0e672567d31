import './nodeCompat.js';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht';
import { peerIdFromString } from '@libp2p/peer-id';
import { ping } from '@libp2p/ping';
import { preSharedKey } from '@libp2p/pnet';
import { tcp } from '@libp2p/tcp';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import type { CID } from 'multiformats/cid';
import { createDataClient } from './dataPath.js';
import { fetchOverStream, OCI_PROTOCOL, serveOverStream } from './ociStream.js';
import type { PeerRequest, PeerResponse, PeerTarget, Router } from './router.js';

interface Libp2pRouterOptions {
  /** libp2p TCP port (plan.p2p.routerPort). */
  port: number;
  /** Pre-shared key in swarm.key format (see swarmKey.ts). */
  psk: Uint8Array;
  /** `host:port` or multiaddrs of other nodes' routers; dialled until connected. */
  bootstrap: string[];
  /** DHT protocol prefix; peers with another prefix never talk. */
  protocolPrefix?: string;
  /** Address to listen on (default 0.0.0.0). */
  host?: string;
  log?: (msg: string) => void;
  /** How long a found provider list may keep growing after the first hit (failover candidates). */
  collectMs?: number;
  /**
   * The TLS-PSK data path (dataPath.ts): every agent's data port and the key derived from the swarm key. A pull
   * goes to `https://<the IP the peer is connected on>:<port>` and falls back to the `/lo/oci/1.0.0` stream when
   * that port cannot be reached. Absent: the stream only.
   */
  data?: { port: number; key: Buffer };
  /** How long the providers found for a key are remembered (default 30 s; 0: not at all). */
  providerCacheMs?: number;
  /** Called for every request sent to a peer, with the transport that carried it (metrics). */
  onFetch?: (transport: 'data' | 'stream') => void;
}

/** A peer whose data port failed is reached over the stream for this long before the port is tried again. */
const DATA_RETRY_MS = 30_000;
/** Connected peers' data connections are touched this often, so the first pull finds a TLS session open. */
const WARM_EVERY_MS = 60_000;

/** Turns `host:port`, `/ip4/.../tcp/...` or `/dns4/...` into a multiaddr. */
function toMultiaddr(entry: string): Multiaddr {
  if (entry.startsWith('/')) return multiaddr(entry);
  const i = entry.lastIndexOf(':');
  if (i < 0) throw new Error(`bootstrap entry ${entry} is not host:port or a multiaddr`);
  const host = entry.slice(0, i).replace(/^\[|\]$/g, '');
  const port = entry.slice(i + 1);
  const proto = /^\d+\.\d+\.\d+\.\d+$/.test(host) ? 'ip4' : host.includes(':') ? 'ip6' : 'dns4';
  return multiaddr(`/${proto}/${host}/tcp/${port}`);
}

/**
 * What the bootstrap loop knows about each configured target: the peer id it answered with (a target is
 * connected when that peer is, whatever address the connection uses, so connected peers are never redialled)
 * and the last error (an unreachable target is logged once, then again only when its error changes).
 */
export class BootstrapState {
  private readonly peerOf = new Map<string, string>();
  private readonly lastError = new Map<string, string>();
  constructor(private readonly log: (msg: string) => void) {}

  needsDial(target: string, connectedPeers: ReadonlySet<string>): boolean {
    const id = this.peerOf.get(target);
    return id === undefined || !connectedPeers.has(id);
  }

  dialed(target: string, peerId: string): void {
    this.peerOf.set(target, peerId);
    if (this.lastError.delete(target)) this.log(`bootstrap ${target}: connected to ${peerId}`);
  }

  failed(target: string, message: string): void {
    if (this.lastError.get(target) === message) return;
    this.lastError.set(target, message);
    this.log(`bootstrap ${target}: ${message}`);
  }
}

export class Libp2pRouter implements Router {
  private constructor(
    readonly node: Libp2p<{ dht: ReturnType<ReturnType<typeof kadDHT>> } & Record<string, unknown>>,
    private readonly opts: Libp2pRouterOptions,
  ) {
    this.data = opts.data ? createDataClient(opts.data.key) : null;
  }

  private stopped = false;
  private bootTimer: NodeJS.Timeout | null = null;
  private warmTimer: NodeJS.Timeout | null = null;
  private readonly data: ReturnType<typeof createDataClient> | null;
  /** Peer id -> until when its data port is not tried (it failed to connect or to answer). */
  private readonly dataDown = new Map<string, number>();
  /** Key -> the providers found for it lately, tried first (no DHT query when one of them answers). */
  private readonly found = new Map<string, { ids: string[]; until: number }>();

  static async start(opts: Libp2pRouterOptions): Promise<Libp2pRouter> {
    const prefix = opts.protocolPrefix ?? '/lo';
    const node = await createLibp2p({
      addresses: { listen: [`/ip4/${opts.host ?? '0.0.0.0'}/tcp/${opts.port}`] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      // Private network: every connection is wrapped in XSalsa20 keyed by the cluster's PSK before noise runs,
      // so a node without the key cannot complete a handshake, join the DHT or be found.
      connectionProtector: preSharedKey({ psk: opts.psk }),
      // Node addresses are private (10.x) by design; the default gater/mappers would drop them.
      connectionGater: { denyDialMultiaddr: async () => false },
      services: {
        identify: identify({ protocolPrefix: prefix }),
        ping: ping({ protocolPrefix: prefix }),
        dht: kadDHT({
          protocol: `${prefix}/kad/1.0.0`,
          clientMode: false,
          peerInfoMapper: passthroughMapper,
          allowQueryWithZeroPeers: true,
        }),
      },
    });
    const r = new Libp2pRouter(node as any, opts);
    r.bootstrapLoop();
    if (opts.data) r.keepWarm();
    return r;
  }

  /**
   * Opens a data connection to every peer when it connects and touches them every minute (the server keeps an
   * idle one for 5 min), so a pull does not pay a TLS handshake. A peer whose data port does not answer is
   * marked: its pulls go over the stream without trying the port first.
   */
  private keepWarm(): void {
    const warm = (id: string): void => {
      const base = this.dataBaseOf(id);
      if (!base || !this.data || this.stopped) return;
      this.data
        .fetch(base, { method: 'HEAD', path: '/v2/', headers: {} }, 2000, AbortSignal.timeout(3000))
        .then((r) => r.body.resume())
        .catch((err: Error) => this.dataFailed(id, base, err));
    };
    this.node.addEventListener('peer:connect', (evt) => warm(evt.detail.toString()));
    this.warmTimer = setInterval(() => {
      for (const id of new Set(this.node.getConnections().map((c) => c.remotePeer.toString()))) warm(id);
    }, WARM_EVERY_MS);
    this.warmTimer.unref();
  }

  private dataFailed(id: string, base: string, err: Error): void {
    const known = (this.dataDown.get(id) ?? 0) > Date.now();
    this.dataDown.set(id, Date.now() + DATA_RETRY_MS);
    if (!known) this.opts.log?.(`data port of ${id} (${base}): ${err.message}; using /lo/oci/1.0.0 for ${DATA_RETRY_MS / 1000} s`);
  }

  /** Keeps dialling the configured nodes that are not connected (they may start later or restart). */
  private bootstrapLoop(): void {
    const targets = this.opts.bootstrap.map(toMultiaddr);
    const own = new Set(this.node.getMultiaddrs().map((m) => m.toString()));
    const state = new BootstrapState(this.opts.log ?? (() => {}));
    const tick = async (): Promise<void> => {
      if (this.stopped) return;
      const connected = new Set(this.node.getConnections().map((c) => c.remotePeer.toString()));
      const due = targets.filter((t) => !own.has(t.toString()) && state.needsDial(t.toString(), connected));
      await Promise.all(
        due.map((t) =>
          this.node
            .dial(t, { signal: AbortSignal.timeout(2000) })
            .then((conn) => state.dialed(t.toString(), conn.remotePeer.toString()))
            .catch((err: Error) => state.failed(t.toString(), err.message)),
        ),
      );
      const again = new Set(this.node.getConnections().map((c) => c.remotePeer.toString()));
      const all = targets.every((t) => own.has(t.toString()) || !state.needsDial(t.toString(), again));
      if (!this.stopped) this.bootTimer = setTimeout(() => void tick(), all ? 10_000 : 1000);
      this.bootTimer?.unref();
    };
    void tick();
  }

  async *resolve(key: CID, timeoutMs: number, signal?: AbortSignal): AsyncIterable<PeerTarget> {
    const ctl = new AbortController();
    const onAbort = (): void => ctl.abort();
    signal?.addEventListener('abort', onAbort);
    const cap = setTimeout(() => ctl.abort(), Math.max(timeoutMs, this.opts.collectMs ?? 5000));
    const self = this.node.peerId.toString();
    const seen = new Set<string>();
    const node = this.node;
    const cached = this.cachedProviders(key);
    const remember = (id: string): void => this.remember(key, { id });
    async function* targets(): AsyncGenerator<PeerTarget> {
      for await (const p of node.contentRouting.findProviders(key, { signal: ctl.signal })) {
        const id = p.id.toString();
        if (id === self || seen.has(id)) continue;
        seen.add(id);
        remember(id);
        // Connected peers are reached over their connection; others at the addresses the record carries.
        if (p.multiaddrs.length > 0) await node.peerStore.merge(p.id, { multiaddrs: p.multiaddrs }).catch(() => {});
        yield { id };
      }
    }
    // Providers found lately and still connected come first: when one answers, the DHT is never asked.
    for (const id of cached) {
      seen.add(id);
      yield { id };
    }
    const it = targets();
    try {
      // The first provider must arrive within timeoutMs (a hard deadline, whatever the query is doing);
      // later ones may keep coming until the cap, as failover candidates.
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
      const first = await Promise.race([it.next(), deadline]).finally(() => clearTimeout(timer));
      if (first === 'timeout' || first.done) return;
      yield first.value;
      for (let n = await it.next(); !n.done; n = await it.next()) yield n.value;
    } catch (err) {
      if (!ctl.signal.aborted) throw err;
    } finally {
      clearTimeout(cap);
      signal?.removeEventListener('abort', onAbort);
      ctl.abort();
      void it.return(undefined).catch(() => {});
    }
  }

  /** Providers of `key` found within providerCacheMs and still connected. */
  private cachedProviders(key: CID): string[] {
    const hit = this.found.get(key.toString());
    if (!hit || hit.until <= Date.now()) return [];
    return hit.ids.filter((id) => this.node.getConnections(peerIdFromString(id)).length > 0);
  }

  knows(key: CID): boolean {
    return this.cachedProviders(key).length > 0;
  }

  remember(key: CID, peer: PeerTarget): void {
    const cacheMs = this.opts.providerCacheMs ?? 30_000;
    if (cacheMs <= 0) return;
    const keyName = key.toString();
    const e = this.found.get(keyName);
    if (e && e.until > Date.now()) {
      if (!e.ids.includes(peer.id)) e.ids.push(peer.id);
    } else this.found.set(keyName, { ids: [peer.id], until: Date.now() + cacheMs });
    if (this.found.size > 4096) for (const [k, v] of this.found) if (v.until <= Date.now()) this.found.delete(k);
  }

  /**
   * Answers other agents' pulls on `/lo/oci/1.0.0` with `answer` (the agent's own registry, local content only).
   * Only peers holding the cluster key reach this: the protocol exists only on PSK-protected connections.
   */
  async serve(answer: (req: PeerRequest, signal: AbortSignal) => Promise<PeerResponse>, headTimeoutMs = 5000): Promise<void> {
    await this.node.handle(OCI_PROTOCOL, ({ stream }) => void serveOverStream(stream, answer, headTimeoutMs), {
      maxInboundStreams: 256,
    });
  }

  /**
   * A pull from `peer`: over its data port (TLS-PSK, keep-alive) when it is connected and that port answers,
   * else on a `/lo/oci/1.0.0` stream.
   */
  async fetch(peer: PeerTarget, req: PeerRequest, timeoutMs: number, signal: AbortSignal): Promise<PeerResponse> {
    const base = this.dataBaseOf(peer.id);
    if (base && this.data) {
      try {
        const res = await this.data.fetch(base, req, timeoutMs, signal);
        this.opts.onFetch?.('data');
        return res;
      } catch (err) {
        if (signal.aborted) throw err;
        // Not reachable (an older agent, a firewall, a wrong key): the stream, for a while.
        this.dataFailed(peer.id, base, err as Error);
      }
    }
    this.opts.onFetch?.('stream');
    return this.fetchOverStream(peer, req, timeoutMs, signal);
  }

  /** `https://<ip>:<data port>` of a connected peer whose data port is not known to be down, else null. */
  private dataBaseOf(id: string): string | null {
    if (!this.opts.data || (this.dataDown.get(id) ?? 0) > Date.now()) return null;
    for (const conn of this.node.getConnections(peerIdFromString(id))) {
      const o = conn.remoteAddr.toOptions();
      if (o.transport !== 'tcp') continue;
      return `https://${o.family === 6 ? `[${o.host}]` : o.host}:${this.opts.data.port}`;
    }
    return null;
  }

  /** A pull from `peer` on a new `/lo/oci/1.0.0` stream (over the existing connection when there is one). */
  async fetchOverStream(peer: PeerTarget, req: PeerRequest, timeoutMs: number, signal: AbortSignal): Promise<PeerResponse> {
    const dial = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
    // negotiateFully false: the protocol name travels with the request (we write first), saving a round trip.
    const stream = await this.node.dialProtocol(peerIdFromString(peer.id), OCI_PROTOCOL, {
      signal: dial,
      maxOutboundStreams: 256,
      negotiateFully: false,
    });
    return fetchOverStream(stream, req, timeoutMs, signal);
  }

  async advertise(keys: CID[]): Promise<{ ok: number; failed: number }> {
    let ok = 0;
    let failed = 0;
    const queue = [...keys];
    const worker = async (): Promise<void> => {
      for (let k = queue.shift(); k; k = queue.shift()) {
        try {
          await this.node.contentRouting.provide(k, { signal: AbortSignal.timeout(10_000) });
          ok++;
        } catch {
          failed++;
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    return { ok, failed };
  }

  connected(): PeerTarget[] {
    return [...new Set(this.node.getConnections().map((c) => c.remotePeer.toString()))].map((id) => ({ id }));
  }

  peerCount(): number {
    return new Set(this.node.getConnections().map((c) => c.remotePeer.toString())).size;
  }

  addresses(): string[] {
    return this.node.getMultiaddrs().map((m) => m.toString());
  }

  onPeerConnect(cb: () => void): void {
    this.node.addEventListener('peer:connect', () => cb());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.bootTimer) clearTimeout(this.bootTimer);
    if (this.warmTimer) clearInterval(this.warmTimer);
    this.data?.close();
    await this.node.stop();
  }
}
