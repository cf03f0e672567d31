/** OCI distribution spec repository name: path components of [a-z0-9] separated by `.`, `_`, `__` or dashes. */
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const NAME = `${COMPONENT}(?:/${COMPONENT})*`;
const TAG = '[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}';
const DIGEST = '[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+';
const MANIFEST_RE = new RegExp(`^/v2/(${NAME})/manifests/(${TAG}|${DIGEST})$`);
const BLOB_RE = new RegExp(`^/v2/(${NAME})/blobs/(${DIGEST})$`);
const DIGEST_RE = new RegExp(`^${DIGEST}$`);

export type OciRoute =
  | { kind: 'base' }
  | { kind: 'manifest'; name: string; reference: string; byDigest: boolean }
  | { kind: 'blob'; name: string; digest: string };

/** Maps a request path to a pull route of the OCI distribution API (null: not a route we serve). */
export function parseOciPath(pathname: string): OciRoute | null {
  if (pathname === '/v2' || pathname === '/v2/') return { kind: 'base' };
  let m = MANIFEST_RE.exec(pathname);
  if (m) return { kind: 'manifest', name: m[1]!, reference: m[2]!, byDigest: DIGEST_RE.test(m[2]!) };
  m = BLOB_RE.exec(pathname);
  if (m) return { kind: 'blob', name: m[1]!, digest: m[2]! };
  return null;
}

/**
 * Whether a tag may be resolved by the P2P mirror. `latest` is left to the upstream unless configured
 * (K3s's embedded mirror does the same: a mutable `latest` must come from the source of truth).
 */
export function tagResolvable(tag: string, resolveLatest: boolean): boolean {
  return resolveLatest || tag !== 'latest';
}

interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses a single `Range: bytes=a-b` header against a blob size. Returns null when absent, 'unsatisfiable'
 * for a range outside the blob and 'ignore' for forms we do not serve (multiple ranges), which the spec
 * lets a server answer with the full content.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | null | 'unsatisfiable' | 'ignore' {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return 'ignore';
  const [, a, b] = m;
  if (a === '' && b === '') return 'ignore';
  if (a === '') {
    const n = Number(b);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  // RFC 9110 14.1.1: a range whose last position is before its first is invalid and the header is ignored.
  if (b !== '' && Number(b) < start) return 'ignore';
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

const MANIFEST_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
};

/** The media types the manifest route serves (OCI and Docker schema 2 manifests and indexes). */
export const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set(Object.values(MANIFEST_TYPES));

/**
 * The manifest media type of a document, or null when it is not a manifest or an index (a layer, or an image
 * config, which is JSON too): the manifest route never serves such a blob.
 */
export function manifestTypeOf(body: Buffer): string | null {
  let doc: { mediaType?: unknown; schemaVersion?: unknown; manifests?: unknown; config?: unknown; layers?: unknown };
  try {
    doc = JSON.parse(body.toString('utf8')) as typeof doc;
  } catch {
    return null;
  }
  if (!doc || typeof doc !== 'object' || doc.schemaVersion !== 2) return null;
  if (doc.mediaType !== undefined)
    return typeof doc.mediaType === 'string' && MANIFEST_MEDIA_TYPES.has(doc.mediaType) ? doc.mediaType : null;
  if (Array.isArray(doc.manifests)) return MANIFEST_TYPES.ociIndex;
  if (doc.config && typeof doc.config === 'object' && Array.isArray(doc.layers)) return MANIFEST_TYPES.ociManifest;
  return null;
}

/** Media type of a manifest from its own JSON (`mediaType`, else OCI index/manifest by shape). */
export function manifestMediaType(body: Buffer): string {
  try {
    const doc = JSON.parse(body.toString('utf8')) as { mediaType?: unknown; manifests?: unknown };
    if (typeof doc.mediaType === 'string' && doc.mediaType) return doc.mediaType;
    return Array.isArray(doc.manifests) ? MANIFEST_TYPES.ociIndex : MANIFEST_TYPES.ociManifest;
  } catch {
    return MANIFEST_TYPES.ociManifest;
  }
}
