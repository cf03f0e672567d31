/**
 * What the agent bundle (scripts/bundle.js) has instead of @chainsafe/as-chacha20poly1305: the same
 * ChaCha20-Poly1305 (RFC 8439) seal/open API that @chainsafe/libp2p-noise uses for frames under 1200 bytes, on
 * Node's OpenSSL (which noise already uses for the larger ones). The WebAssembly original costs ~5 MiB of RSS
 * per agent, loaded and instantiated at import (docs/speed.md); test/unit/agentImage.test.ts compares the two.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';

const TAG = 16;

function into(dst, out) {
  if (!dst) return out;
  if (dst.length !== out.length) throw new Error('ChaCha20Poly1305: incorrect destination length');
  dst.set(out);
  return dst;
}

/** The WebAssembly instance the original allocates: none here. */
export function newInstance() {
  return null;
}

export class ChaCha20Poly1305 {
  /** ciphertext followed by the 16-byte tag (written to `dst` when given) */
  seal(key, nonce, plaintext, associatedData, dst) {
    const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG });
    if (associatedData) c.setAAD(associatedData, { plaintextLength: plaintext.length });
    const body = c.update(plaintext);
    const final = c.final();
    return into(dst, Buffer.concat([body, final, c.getAuthTag()]));
  }

  /** the plaintext (written to `dst` when given), or null when the tag does not verify */
  open(key, nonce, sealed, associatedData, dst) {
    if (sealed.length < TAG) return null;
    const text = sealed.subarray(0, sealed.length - TAG);
    const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG });
    if (associatedData) d.setAAD(associatedData, { plaintextLength: text.length });
    d.setAuthTag(sealed.subarray(sealed.length - TAG));
    let out;
    try {
      out = Buffer.concat([d.update(text), d.final()]);
    } catch {
      return null;
    }
    return into(dst, out);
  }
}
