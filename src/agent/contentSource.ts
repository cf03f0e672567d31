import type { Readable } from 'node:stream';

/** An OCI descriptor as containerd stores it for an image's target. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export interface LocalTag {
  registry: string;
  repository: string;
  tag: string;
  digest: string;
}

/**
 * What the agent needs from a node's content store. The containerd implementation (containerdSource.ts)
 * is the real one; unit tests of the OCI routes use an in-memory one.
 */
export interface ContentSource {
  /** Target of the local image `<registry>/<repository>:<tag>`, or null. */
  resolveTag(registry: string, repository: string, tag: string): Promise<Descriptor | null>;
  /** Size of a blob held locally, or null. */
  stat(digest: string): Promise<{ size: number } | null>;
  /** Streams bytes [start, end] (inclusive) of a local blob; never buffers the whole blob. */
  read(digest: string, start: number, end: number): Promise<Readable>;
  /** Every digest in the content store. */
  listDigests(): Promise<string[]>;
  /** Every tagged image (registry/repository:tag -> digest). */
  listTags(): Promise<LocalTag[]>;
  /** Calls back when the store may have changed (image created/updated/deleted); returns an unsubscribe. */
  watch(onChange: (topic: string) => void): () => void;
  close(): Promise<void>;
}
