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

  it('decodes highly compressible input (256 MiB of zeros in a few KiB) only as fast as it is read', async () => {
    // made outside this process: a 256 MiB buffer freed here would hide what the decoder holds
    const zeros = execFileSync('sh', ['-c', 'head -c 268435456 /dev/zero | zstd -q -3'], { maxBuffer: 1 << 20 });
    expect(zeros.length).toBeLessThan(64 << 10);
    const before = process.memoryUsage().arrayBuffers;
    const decoder = createZstdDecompress();
    Readable.from([zeros]).pipe(decoder);
    const it = decoder[Symbol.asyncIterator]();
    expect(((await it.next()).value as Buffer).length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 50));
    // a decoder that ran ahead of its reader would hold the 256 MiB it decoded
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 << 20);
    let size = 0;
    for await (const c of { [Symbol.asyncIterator]: () => it }) size += (c as Buffer).length;
    expect(size).toBeGreaterThan((256 << 20) - (1 << 20));
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
