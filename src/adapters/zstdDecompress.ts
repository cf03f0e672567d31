import { Duplex } from 'node:stream';
import { Decompress } from 'fzstd';

/** Input is fed to the decoder in slices sized so that one push decodes about this much (a 128 KiB block
 * can come from 4 bytes of input: zeros, a sparse file). */
const OUT_TARGET = 1 << 20;
const SLICE_MIN = 64;
const SLICE_MAX = 1 << 10;

/**
 * A streaming zstd decompressor (issue 12: K3s ships its air-gap images as `.tar.zst`; Node 20's zlib has
 * no zstd). fzstd is pure JavaScript, MIT, no install script; its streaming `Decompress` keeps one frame's
 * window and at most one compressed block of input. It hands over decoded blocks synchronously, so the input
 * is pushed in slices (smaller where it decodes to much more) and each block is yielded on its own: the reader's backpressure holds the file stream,
 * and memory stays flat however large (or however compressible) the archive is. Each block is a fresh array
 * (not a view of the window), so it is passed on without a copy.
 */
export function createZstdDecompress(): Duplex {
  return Duplex.from(async function* (source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    const out: Uint8Array[] = [];
    const z = new Decompress((chunk) => {
      if (chunk.length) out.push(chunk);
    });
    const push = (chunk: Uint8Array, final: boolean): void => {
      try {
        z.push(chunk, final);
      } catch (err) {
        throw new Error(`zstd: ${(err as Error).message}`, { cause: err });
      }
    };
    let slice = SLICE_MIN;
    for await (const chunk of source) {
      for (let i = 0; i < chunk.length;) {
        const n = Math.min(slice, chunk.length - i);
        push(chunk.subarray(i, i + n), false);
        i += n;
        let produced = 0;
        for (const c of out.splice(0)) {
          produced += c.length;
          yield Buffer.from(c.buffer, c.byteOffset, c.length);
        }
        // shrink the slice when a push decoded well over the target, grow it back when it decoded little
        if (produced > 2 * OUT_TARGET) slice = Math.max(SLICE_MIN, slice >> 2);
        else if (produced < OUT_TARGET / 4) slice = Math.min(SLICE_MAX, slice << 1);
      }
    }
    push(new Uint8Array(0), true);
    for (const c of out.splice(0)) yield Buffer.from(c.buffer, c.byteOffset, c.length);
  });
}

/** zstd's frame magic number, 28 B5 2F FD (RFC 8878 §3.1.1): archives are told by content, not by name. */
export function isZstdMagic(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd;
}
