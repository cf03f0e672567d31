import { createHash } from 'node:crypto';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { create as createDigest } from 'multiformats/hashes/digest';

/** Multihash code of sha2-256 (https://github.com/multiformats/multicodec). */
const SHA2_256 = 0x12;
const DIGEST_RE = /^sha256:([a-f0-9]{64})$/;

function cidOfSha256(bytes: Uint8Array): CID {
  return CID.createV1(raw.code, createDigest(SHA2_256, bytes));
}

/**
 * DHT key of an OCI digest. For `sha256:<hex>` the multihash IS the content's sha256, so the CID names the
 * blob itself (as IPFS would for a raw block); other algorithms are keyed by a sha256 of the digest string.
 */
export function digestKey(digest: string): CID {
  const m = DIGEST_RE.exec(digest);
  if (m) return cidOfSha256(Buffer.from(m[1]!, 'hex'));
  return cidOfSha256(createHash('sha256').update(`lo-digest:${digest}`).digest());
}

/** DHT key of a tag: sha256 of `lo-tag:<registry>/<repository>:<tag>` (registry as containerd names it, e.g. docker.io). */
export function tagKey(registry: string, repository: string, tag: string): CID {
  return cidOfSha256(createHash('sha256').update(`lo-tag:${registry}/${repository}:${tag}`).digest());
}

/** Splits a containerd image name `docker.io/library/alpine:3.19` into registry, repository and tag (null if by digest only). */
export function parseImageName(name: string): { registry: string; repository: string; tag: string } | null {
  const at = name.indexOf('@');
  const base = at >= 0 ? name.slice(0, at) : name;
  const slash = base.indexOf('/');
  if (slash < 0) return null;
  const registry = base.slice(0, slash);
  const rest = base.slice(slash + 1);
  const colon = rest.lastIndexOf(':');
  if (colon < 0) return null;
  const repository = rest.slice(0, colon);
  const tag = rest.slice(colon + 1);
  if (!repository || !tag) return null;
  return { registry, repository, tag };
}
