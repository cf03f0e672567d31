import type { Readable } from 'node:stream';
import type { CID } from 'multiformats/cid';

export interface PeerTarget {
  /** libp2p peer id (string). */
  id: string;
}

/** A pull request to another agent: it answers from its own store only (no second hop). */
export interface PeerRequest {
  method: 'GET' | 'HEAD';
  /** `/v2/<name>/(manifests|blobs)/<reference>[?ns=<registry>]` */
  path: string;
  /** Only `accept` and `range` travel; the serving side adds the hop header itself. */
  headers: Record<string, string>;
}

/** Another agent's answer: status and headers first, then the body, streamed with back-pressure. */
export interface PeerResponse {
  status: number;
  headers: Record<string, string>;
  /** Ends when the body is complete; errors when the peer or the channel failed. Destroy it to cancel. */
  body: Readable;
}

/** Finds which peers hold a key, fetches from them, and tells the network what this node holds. */
export interface Router {
  /**
   * Yields peers providing `key`. If none is found within `timeoutMs` the iteration ends (caller answers 404);
   * after the first one it keeps yielding for a while so the caller can fail over.
   */
  resolve(key: CID, timeoutMs: number, signal?: AbortSignal): AsyncIterable<PeerTarget>;
  /**
   * Sends `req` to `peer` (for libp2p: the `/lo/oci/1.0.0` stream protocol on the PSK connection). Rejects
   * when the peer does not answer within `timeoutMs`; the body errors when it pauses longer than that.
   */
  fetch(peer: PeerTarget, req: PeerRequest, timeoutMs: number, signal: AbortSignal): Promise<PeerResponse>;
  /** Announces that this node holds `keys`. Resolves when every announcement was attempted. */
  advertise(keys: CID[]): Promise<{ ok: number; failed: number }>;
  peerCount(): number;
  /** The peers this node is connected to now (asked directly in small clusters, before or alongside the DHT). */
  connected?(): PeerTarget[];
  /** Whether a provider of `key` found lately is still connected (resolve yields it first, without the DHT). */
  knows?(key: CID): boolean;
  /** Remembers `peer` as a provider of `key` (a connected peer that answered a direct ask), as resolve does. */
  remember?(key: CID, peer: PeerTarget): void;
  /** Multiaddrs this node listens on (with its peer id). */
  addresses(): string[];
}
