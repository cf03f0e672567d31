import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { createZstdDecompress, isZstdMagic } from '../../src/adapters/zstdDecompress.js';
import { compressionOf } from '../../src/usecases/imagesArchive.js';

// Fixtures are made by the real zstd CLI (scripts/testbed.sh installs it), never by the decoder under test.
const dir = mkdtempSync(join(tmpdir(), 'lo-zstd-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function zstd(data: Buffer, ...args: string[]): Buffer {
  const file = join(dir, `in-${randomBytes(4).toString('hex')}`);
  writeFileSync(file, data);
  execFileSync('zstd', ['-q', '-f', ...args, file, '-o', `${file}.zst`]);
  return readFileSync(`${file}.zst`);
}

/** Decompresses `input`, fed in chunks of `chunk` bytes; the sha256 and size of what came out. */
async function inflate(input: Buffer, chunk: number): Promise<{ sha: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  const chunks = function* (): Generator<Buffer> {
    for (let i = 0; i < input.length; i += chunk) yield input.subarray(i, i + chunk);
  };
  await pipeline(
    Readable.from(chunks()),
    createZstdDecompress(),
    new Writable({
      write(c: Buffer, _e, cb) {
        h.update(c);
        size += c.length;
        cb();
      },
    }),
  );
  return { sha: h.digest('hex'), size };
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('zstd archives (lo images load, issue 12)', () => {
  // 3 MiB: random bytes (raw blocks) and a repeated text (compressed blocks, long matches across chunks)
  const data = Buffer.concat([
    randomBytes(1 << 20),
    Buffer.from('layer.tar index.json blobs/sha256/\n'.repeat(60000)),
    randomBytes(1 << 20),
  ]);

  it('decompresses what the zstd CLI wrote, byte for byte, whatever the chunking', async () => {
    const z = zstd(data, '-3', '--check');
    expect(z.length).toBeLessThan(data.length);
    for (const chunk of [7, 4093, 65536, z.length]) expect(await inflate(z, chunk)).toEqual({ sha: sha(data), size: data.length });
  });

  it('reads frames one after another (concatenated .zst files), at high and low levels', async () => {
    const two = Buffer.concat([zstd(data.subarray(0, 1 << 20), '-19'), zstd(data.subarray(1 << 20), '-1', '--no-check')]);
    expect(await inflate(two, 65536)).toEqual({ sha: sha(data), size: data.length });
  });

  it('fails on a truncated or corrupted archive instead of ending quietly', async () => {
    const z = zstd(data, '-3');
    await expect(inflate(z.subarray(0, z.length - 100), 65536)).rejects.toThrow(/zstd/);
    const bad = Buffer.from(z);
    bad.fill(0xff, 4, 40);
    await expect(inflate(bad, 65536)).rejects.toThrow(/zstd/);
  });

  it('tells the compression by the first bytes, not the name', () => {
    const z = zstd(Buffer.from('x'.repeat(100)));
    expect(isZstdMagic(z)).toBe(true);
    expect(compressionOf(z.subarray(0, 4))).toBe('zstd');
    expect(compressionOf(Buffer.from([0x1f, 0x8b, 8, 0]))).toBe('gzip');
    expect(compressionOf(Buffer.from('index.json'))).toBe('none');
    expect(compressionOf(Buffer.from([0x28, 0xb5]))).toBe('none');
  });
});
