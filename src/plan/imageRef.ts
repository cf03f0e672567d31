/**
 * Image references as containerd and the kubelet read them (distribution/reference's normalisation):
 * `nginx` is `docker.io/library/nginx:latest`; the first path component is a registry host when it has a
 * dot or a colon or is `localhost`.
 */
export interface ImageRef {
  /** Registry host as containerd looks it up in certs.d, e.g. docker.io, localhost:5000. */
  registry: string;
  /** Repository path on that registry, e.g. library/nginx. */
  repository: string;
  tag?: string;
  digest?: string;
  /** tag or digest, whichever a resolve asks for (digest wins, as in containerd). */
  reference: string;
  /** The normalised reference, e.g. docker.io/library/nginx:1.27. */
  normalized: string;
}

const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$/;

export class ImageRefError extends Error {}

export function parseImageRef(input: string): ImageRef {
  const text = input.trim();
  if (!text) throw new ImageRefError('an image reference is required, e.g. nginx:1.27 or docker.io/library/nginx:1.27');
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new ImageRefError(`"${digest}" is not a digest (expected e.g. sha256:<64 hex>)`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new ImageRefError(`"${tag}" is not a valid tag`);
  }
  const parts = rest.split('/');
  let registry = 'docker.io';
  const first = parts[0]!;
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!HOST.test(first)) throw new ImageRefError(`"${first}" is not a registry host`);
    registry = first;
    parts.shift();
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = 'docker.io';
  if (registry === 'docker.io' && parts.length === 1) parts.unshift('library');
  for (const p of parts) {
    if (!COMPONENT.test(p))
      throw new ImageRefError(`"${p}" in "${text}" is not a valid repository name component (lower case, digits, . _ -)`);
  }
  const repository = parts.join('/');
  if (!tag && !digest) tag = 'latest';
  const normalized = `${registry}/${repository}${tag ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`;
  return { registry, repository, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}), reference: digest ?? tag!, normalized };
}
