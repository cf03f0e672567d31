import type { CID } from 'multiformats/cid';

export interface PeerTarget {
  /** libp2p peer id (string). */
  id: string;
  /** Base URL of the peer's OCI registry, e.g. http://10.170.0.11:30020 */
  url: string;
}

/** Finds which peers hold a key and tells the network what this node holds. */
export interface Router {
  /**
   * Yields peers providing `key`. If none is found within `timeoutMs` the iteration ends (caller answers 404);
   * after the first one it keeps yielding for a while so the caller can fail over.
   */
  resolve(key: CID, timeoutMs: number, signal?: AbortSignal): AsyncIterable<PeerTarget>;
  /** Announces that this node holds `keys`. Resolves when every announcement was attempted. */
  advertise(keys: CID[]): Promise<{ ok: number; failed: number }>;
  peerCount(): number;
  /** Multiaddrs this node listens on (with its peer id). */
  addresses(): string[];
}
