import type { ErrorObject } from 'ajv';
import { pointerToSegments } from './schemaMessages.js';
import type { HostPortSpec, NetworkSpec, P2PSpec } from './types.js';
import type { Segment } from './yamlPosition.js';

/** One problem found in a spec document, before it gets its file and line. */
export interface SpecIssue {
  path: Segment[];
  message: string;
  hint?: string;
}

interface MirrorDoc {
  name: string;
  url: string;
  registry?: string;
  credentials?: { usernameEnv?: string; passwordEnv?: string; tokenEnv?: string };
  tls?: TlsDoc;
}

interface TlsDoc {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  insecureSkipVerify?: boolean;
}

interface EndpointDoc {
  url: string;
  capabilities: Array<'pull' | 'resolve' | 'push'>;
  tls: TlsDoc;
  headers: Record<string, { env: string }>;
}

export interface HostDoc {
  endpoints: EndpointDoc[];
  disableDefaultEndpoint?: boolean;
  /** Regex -> replacement on the repository name, in the file's order. */
  rewrite?: Record<string, string>;
}

/** The spec document as the JSON schema describes it, with the schema's defaults applied. */
export interface SpecDocument {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: {
    cluster: { domain?: string };
    kubernetes: { version: string };
    network?: NetworkSpec;
    nodes: { controlPlane: number; workers: number; hostPorts: HostPortSpec[]; maxConcurrentDownloads: number };
    registries: {
      tls: boolean;
      disableDefaultEndpoint: boolean;
      cache: { maxSize?: string };
      shared: { enabled: boolean; network: NetworkSpec };
      mirrors: MirrorDoc[];
      hosts: Record<string, HostDoc>;
      p2p: Omit<P2PSpec, 'enabled' | 'resolveTags'> & { enabled?: boolean; resolveTags: boolean | string[] };
    };
  };
}

type DeepPartial<T> = T extends (infer U)[]
  ? (DeepPartial<U> | undefined)[]
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

/**
 * A document after the schema pass, valid or not: every value the schema rejected is removed (a rejected
 * list item becomes undefined, so indexes keep pointing at the user's lines). Whatever is left has its schema
 * type, so the cross-field rules read typed values; any of them may be missing.
 */
export type CheckedDoc = DeepPartial<SpecDocument>;

/** Removes from `data` (in place) every value an ajv error points at. */
export function pruneRejected(data: Record<string, unknown>, errors: readonly ErrorObject[]): CheckedDoc {
  for (const err of errors) {
    const path = pointerToSegments(err.instancePath);
    // A missing required field leaves nothing to remove; the object around it is still good.
    if (err.keyword === 'required') continue;
    if (err.keyword === 'additionalProperties') path.push(String((err.params as { additionalProperty: string }).additionalProperty));
    removeAt(data, path);
  }
  return data as CheckedDoc;
}

function removeAt(data: unknown, path: Segment[]): void {
  if (path.length === 0) return;
  let node: unknown = data;
  for (const seg of path.slice(0, -1)) {
    node = typeof node === 'object' && node !== null ? (node as Record<Segment, unknown>)[seg] : undefined;
  }
  const last = path[path.length - 1]!;
  if (Array.isArray(node) && typeof last === 'number') node[last] = undefined;
  else if (typeof node === 'object' && node !== null) delete (node as Record<Segment, unknown>)[last];
}
