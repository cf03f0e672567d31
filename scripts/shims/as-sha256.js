/**
 * What the agent bundle (scripts/bundle.js) has instead of @chainsafe/as-sha256 (WebAssembly, instantiated at
 * import): SHA-256 on Node's OpenSSL. @chainsafe/libp2p-noise imports digest only (and hashes with node:crypto
 * by default already).
 */
import { createHash } from 'node:crypto';

export function digest(data) {
  return new Uint8Array(createHash('sha256').update(data).digest());
}
