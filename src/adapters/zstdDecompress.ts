import { Transform } from 'node:stream';
import { Decompress } from 'fzstd';

/**
 * A streaming zstd decompressor (issue 12: K3s ships its air-gap images as `.tar.zst`; Node 20's zlib has
 * no zstd). fzstd is pure JavaScript, MIT, no install script; its streaming `Decompress` keeps one frame's
 * window and at most one compressed block of input, so memory is flat in the archive's size. Each block it
 * hands over is a fresh array (not a view of the window), so it is passed on without a copy.
 */
export function createZstdDecompress(): Transform {
  const out: Uint8Array[] = [];
  const z = new Decompress((chunk) => {
    if (chunk.length) out.push(chunk);
  });
  const run = (t: Transform, chunk: Uint8Array, final: boolean): Error | undefined => {
    try {
      z.push(chunk, final);
    } catch (err) {
      return new Error(`zstd: ${(err as Error).message}`, { cause: err });
    } finally {
      for (const c of out.splice(0)) t.push(Buffer.from(c.buffer, c.byteOffset, c.length));
    }
    return undefined;
  };
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      cb(run(this, chunk, false));
    },
    flush(cb) {
      cb(run(this, new Uint8Array(0), true));
    },
  });
}

/** zstd's frame magic number, 28 B5 2F FD (RFC 8878 §3.1.1): archives are told by content, not by name. */
export function isZstdMagic(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd;
}
