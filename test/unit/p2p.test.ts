/**
 * Unit tests of the P2P agent's pieces: OCI routes (against an in-memory content source — the e2e test covers
 * real containerd), Range, the latest-tag policy, the DHT key scheme, swarm keys, and relaying from peers
 * (peers are real HTTP servers running the same handler; the Router seam yields them, the e2e covers the DHT).
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/net.js';
import { base32 } from 'multiformats/bases/base32';
import { CID } from 'multiformats/cid';
import type { ContentSource, Descriptor, LocalTag } from '../../src/agent/contentSource.js';
import { digestKey, parseImageName, tagKey } from '../../src/agent/keys.js';
import { createMetrics } from '../../src/agent/metrics.js';
import { manifestMediaType, manifestTypeOf, parseOciPath, parseRange, tagResolvable } from '../../src/agent/ociPath.js';
import { advertisedTags, startAgent } from '../../src/agent/agent.js';
import { parsePeerRequest } from '../../src/agent/ociStream.js';
import { createDataClient, dataKeyOf } from '../../src/agent/dataPath.js';
import { ContainerdSource } from '../../src/agent/containerdSource.js';
import { BootstrapState } from '../../src/agent/libp2pRouter.js';
import { createRegistryHandler, type RegistryOptions } from '../../src/agent/registry.js';
import { HOP_HEADER, readLimited } from '../../src/agent/registry/request.js';
import { fetchOverHttp } from '../../src/agent/registry/fetchOverHttp.js';
import type { PeerRequest, PeerResponse, PeerTarget, Router } from '../../src/agent/router.js';
import { ensureSwarmKey, generateSwarmKey, parseSwarmKey } from '../../src/agent/swarmKey.js';
import { agentArgs } from '../../src/apply/deployP2P.js';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { planCluster } from '../../src/plan/planCluster.js';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** In-memory content store with the same contract as the containerd source. */
class MemorySource implements ContentSource {
  blobs = new Map<string, Buffer>();
  tags = new Map<string, Descriptor>();
  reads = 0;
  add(b: Buffer): string {
    const d = sha(b);
    this.blobs.set(d, b);
    return d;
  }
  tag(name: string, d: Descriptor): void {
    this.tags.set(name, d);
  }
  async resolveTag(registry: string, repository: string, tag: string): Promise<Descriptor | null> {
    return this.tags.get(`${registry}/${repository}:${tag}`) ?? null;
  }
  async stat(digest: string): Promise<{ size: number } | null> {
    const b = this.blobs.get(digest);
    return b ? { size: b.length } : null;
  }
  async read(digest: string, start: number, end: number): Promise<Readable> {
    this.reads++;
    const b = this.blobs.get(digest)!;
    // Small chunks, so relays see several of them.
    const chunks: Buffer[] = [];
    for (let i = start; i <= end; i += 16 * 1024) chunks.push(b.subarray(i, Math.min(end + 1, i + 16 * 1024)));
    return Readable.from(chunks);
  }
  async listDigests(): Promise<string[]> {
    return [...this.blobs.keys()];
  }
  async listTags(): Promise<LocalTag[]> {
    return [...this.tags].map(([name, d]) => ({ ...parseImageName(name)!, digest: d.digest }));
  }
  watch(): () => void {
    return () => {};
  }
  async close(): Promise<void> {}
}

/** A peer of the Router seam: its registry handler on an HTTP server of its own (the e2e covers libp2p). */
type TestPeer = PeerTarget & { url: string };

/**
 * The Router seam with a fixed provider list per key (what the DHT would return); it fetches from a peer the
 * way the serving side of `/lo/oci/1.0.0` does: the peer's registry with the hop header.
 */
class StaticRouter implements Router {
  providers = new Map<string, TestPeer[]>();
  delayMs = 0;
  async *resolve(key: CID, timeoutMs: number): AsyncIterable<PeerTarget> {
    const list = this.providers.get(key.toString()) ?? [];
    if (this.delayMs > timeoutMs || list.length === 0) {
      await new Promise((r) => setTimeout(r, Math.min(this.delayMs, timeoutMs)));
      return;
    }
    await new Promise((r) => setTimeout(r, this.delayMs));
    yield* list;
  }
  fetch(peer: PeerTarget, req: PeerRequest, timeoutMs: number, signal: AbortSignal): Promise<PeerResponse> {
    return fetchOverHttp((peer as TestPeer).url, req, timeoutMs, signal, { [HOP_HEADER]: '1' });
  }
  async advertise(keys: CID[]) {
    return { ok: keys.length, failed: 0 };
  }
  peerCount(): number {
    return this.providers.size;
  }
  addresses(): string[] {
    return [];
  }
}

const servers: http.Server[] = [];
async function serve(handler: http.RequestListener): Promise<string> {
  const s = http.createServer(handler);
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  servers.push(s);
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

function registry(source: ContentSource, extra: Partial<RegistryOptions> = {}) {
  const metrics = createMetrics();
  const handler = createRegistryHandler({ source, router: null, metrics, resolveTimeoutMs: 20, resolveLatest: false, ...extra });
  return { handler, metrics };
}

const manifestDoc = (layer: string, size: number): Buffer =>
  Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: layer, size },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer, size }],
    }),
  );

describe('OCI paths, Range and tag policy', () => {
  it('parses pull routes and rejects others', () => {
    expect(parseOciPath('/v2/')).toEqual({ kind: 'base' });
    expect(parseOciPath('/v2')).toEqual({ kind: 'base' });
    expect(parseOciPath('/v2/library/alpine/manifests/3.19')).toEqual({
      kind: 'manifest',
      name: 'library/alpine',
      reference: '3.19',
      byDigest: false,
    });
    const d = `sha256:${'a'.repeat(64)}`;
    expect(parseOciPath(`/v2/a/b/c/manifests/${d}`)).toEqual({ kind: 'manifest', name: 'a/b/c', reference: d, byDigest: true });
    expect(parseOciPath(`/v2/my-org/my.app_x/blobs/${d}`)).toEqual({ kind: 'blob', name: 'my-org/my.app_x', digest: d });
    expect(parseOciPath('/v2/Upper/manifests/1')).toBeNull();
    expect(parseOciPath('/v2/x/blobs/not-a-digest')).toBeNull();
    expect(parseOciPath('/v2/x/blobs/uploads/')).toBeNull();
    expect(parseOciPath('/v2/_catalog')).toBeNull();
    expect(parseOciPath('/v2/x/tags/list')).toBeNull();
  });

  it('parses single byte ranges against the blob size', () => {
    expect(parseRange(undefined, 100)).toBeNull();
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=90-500', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=100-', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=5-4', 100)).toBe('ignore'); // RFC 9110: last < first is invalid, so ignored
    expect(parseRange('bytes=0-1,5-6', 100)).toBe('ignore');
    expect(parseRange('items=0-1', 100)).toBe('ignore');
  });

  it('does not resolve latest unless configured', () => {
    expect(tagResolvable('latest', false)).toBe(false);
    expect(tagResolvable('latest', true)).toBe(true);
    expect(tagResolvable('1.2', false)).toBe(true);
    expect(tagResolvable('latest-alpine', false)).toBe(true);
  });

  it('derives manifest media types from the document', () => {
    expect(manifestMediaType(Buffer.from('{"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}'))).toBe(
      'application/vnd.docker.distribution.manifest.v2+json',
    );
    expect(manifestMediaType(Buffer.from('{"schemaVersion":2,"manifests":[]}'))).toBe('application/vnd.oci.image.index.v1+json');
    expect(manifestMediaType(Buffer.from('{"schemaVersion":2,"layers":[]}'))).toBe('application/vnd.oci.image.manifest.v1+json');
  });
});

describe('DHT key scheme', () => {
  it('keys a sha256 digest by a raw CIDv1 whose multihash is the digest itself', () => {
    const hex = createHash('sha256').update('hello').digest('hex');
    const cid = digestKey(`sha256:${hex}`);
    expect(cid.version).toBe(1);
    expect(cid.code).toBe(0x55);
    expect(cid.multihash.code).toBe(0x12);
    expect(Buffer.from(cid.multihash.digest).toString('hex')).toBe(hex);
    // Same as IPFS's CID for the raw block "hello" (bafkrei… = CIDv1 raw sha2-256).
    expect(cid.toString()).toBe(CID.parse('bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq').toString());
    expect(cid.toString(base32)).toMatch(/^bafkrei/);
  });

  it('keys other digests and tags by hashes of their names, all distinct', () => {
    const a = tagKey('docker.io', 'library/alpine', '3.19');
    expect(tagKey('docker.io', 'library/alpine', '3.19').equals(a)).toBe(true);
    expect(tagKey('quay.io', 'library/alpine', '3.19').equals(a)).toBe(false);
    expect(tagKey('docker.io', 'library/alpine', '3.20').equals(a)).toBe(false);
    expect(tagKey('docker.io', 'library', 'alpine:3.19').equals(a)).toBe(false);
    const expected = createHash('sha256').update('lo-tag:docker.io/library/alpine:3.19').digest('hex');
    expect(Buffer.from(a.multihash.digest).toString('hex')).toBe(expected);
    const sha512 = digestKey(`sha512:${'b'.repeat(128)}`);
    expect(sha512.multihash.code).toBe(0x12);
    expect(sha512.equals(digestKey(`sha512:${'c'.repeat(128)}`))).toBe(false);
  });

  it('splits containerd image names', () => {
    expect(parseImageName('docker.io/library/alpine:3.19')).toEqual({ registry: 'docker.io', repository: 'library/alpine', tag: '3.19' });
    expect(parseImageName('localhost:5000/a/b:1')).toEqual({ registry: 'localhost:5000', repository: 'a/b', tag: '1' });
    expect(parseImageName('docker.io/library/alpine@sha256:abc')).toBeNull();
    expect(parseImageName('sha256:abcdef')).toBeNull();
  });
});

describe('swarm key', () => {
  it('generates, parses and keeps a 0600 key', async () => {
    const text = generateSwarmKey();
    expect(text).toMatch(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/);
    expect(generateSwarmKey()).not.toBe(text);
    expect(() => parseSwarmKey('nope', 'k')).toThrow(/not a swarm key/);
    const dir = mkdtempSync(join(tmpdir(), 'lop2p-key-'));
    const path = join(dir, 'sub', 'swarm.key');
    const first = await ensureSwarmKey(path);
    expect(first.created).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const bytes = readFileSync(path);
    const again = await ensureSwarmKey(path);
    expect(again.created).toBe(false);
    expect(readFileSync(path).equals(bytes)).toBe(true);
    expect(Buffer.from(again.psk).equals(Buffer.from(first.psk))).toBe(true);
    writeFileSync(path, 'garbage');
    await expect(ensureSwarmKey(path)).rejects.toThrow(/not a swarm key/);
  });
});

describe('OCI routes on local content', () => {
  const src = new MemorySource();
  const blob = randomBytes(100_000);
  const blobDigest = src.add(blob);
  const manifest = manifestDoc(blobDigest, blob.length);
  const manifestDigest = src.add(manifest);
  src.tag('docker.io/library/app:1.0', {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: manifestDigest,
    size: manifest.length,
  });
  src.tag('docker.io/library/app:latest', {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: manifestDigest,
    size: manifest.length,
  });
  let base = '';
  const { handler, metrics } = registry(src);

  it('answers /v2/ with the API version header', async () => {
    base = await serve(handler);
    const r = await fetch(`${base}/v2/`);
    expect(r.status).toBe(200);
    expect(r.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect((await fetch(`${base}/v2/`, { method: 'HEAD' })).status).toBe(200);
  });

  it('serves a manifest by tag (with ns) and by digest, GET and HEAD, with type, digest and length', async () => {
    for (const ref of ['1.0?ns=docker.io', manifestDigest]) {
      const r = await fetch(`${base}/v2/library/app/manifests/${ref}`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('application/vnd.oci.image.manifest.v1+json');
      expect(r.headers.get('docker-content-digest')).toBe(manifestDigest);
      expect(r.headers.get('content-length')).toBe(String(manifest.length));
      expect(Buffer.from(await r.arrayBuffer()).equals(manifest)).toBe(true);
      const h = await fetch(`${base}/v2/library/app/manifests/${ref}`, { method: 'HEAD' });
      expect(h.status).toBe(200);
      expect(h.headers.get('content-length')).toBe(String(manifest.length));
      expect(h.headers.get('docker-content-digest')).toBe(manifestDigest);
    }
  });

  it('needs ns for tags, and answers 404 for latest and for other registries', async () => {
    expect((await fetch(`${base}/v2/library/app/manifests/1.0`)).status).toBe(404);
    expect((await fetch(`${base}/v2/library/app/manifests/1.0?ns=quay.io`)).status).toBe(404);
    const latest = await fetch(`${base}/v2/library/app/manifests/latest?ns=docker.io`);
    expect(latest.status).toBe(404);
    expect(((await latest.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('MANIFEST_UNKNOWN');
    const withLatest = registry(src, { resolveLatest: true });
    const base2 = await serve(withLatest.handler);
    expect((await fetch(`${base2}/v2/library/app/manifests/latest?ns=docker.io`)).status).toBe(200);
  });

  it('serves blobs whole and by single Range (206, 416), and 404s unknown ones', async () => {
    const r = await fetch(`${base}/v2/library/app/blobs/${blobDigest}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/octet-stream');
    expect(r.headers.get('docker-content-digest')).toBe(blobDigest);
    expect(r.headers.get('content-length')).toBe(String(blob.length));
    expect(r.headers.get('accept-ranges')).toBe('bytes');
    expect(Buffer.from(await r.arrayBuffer()).equals(blob)).toBe(true);
    const p = await fetch(`${base}/v2/library/app/blobs/${blobDigest}`, { headers: { range: 'bytes=1000-1999' } });
    expect(p.status).toBe(206);
    expect(p.headers.get('content-range')).toBe(`bytes 1000-1999/${blob.length}`);
    expect(p.headers.get('content-length')).toBe('1000');
    expect(Buffer.from(await p.arrayBuffer()).equals(blob.subarray(1000, 2000))).toBe(true);
    const tail = await fetch(`${base}/v2/library/app/blobs/${blobDigest}`, { headers: { range: 'bytes=99990-' } });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer()).equals(blob.subarray(99_990))).toBe(true);
    const bad = await fetch(`${base}/v2/library/app/blobs/${blobDigest}`, { headers: { range: `bytes=${blob.length}-` } });
    expect(bad.status).toBe(416);
    expect(bad.headers.get('content-range')).toBe(`bytes */${blob.length}`);
    expect((await fetch(`${base}/v2/library/app/blobs/sha256:${'0'.repeat(64)}`)).status).toBe(404);
    const head = await fetch(`${base}/v2/library/app/blobs/${blobDigest}`, { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe(String(blob.length));
  });

  it('is read-only and counts requests by result in its metrics', async () => {
    expect((await fetch(`${base}/v2/library/app/blobs/uploads/`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${base}/v2/_catalog`)).status).toBe(404);
    // /metrics has a port of its own (p2p.metricsPort): the registry port serves pulls only.
    expect((await fetch(`${base}/metrics`)).status).toBe(404);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/lo_p2p_requests_total\{route="manifest",source="local",result="ok"\} [1-9]/);
    expect(text).toMatch(/lo_p2p_requests_total\{route="manifest",source="none",result="tag-policy"\} 1/);
    expect(text).toMatch(/lo_p2p_bytes_served_total\{source="local"\} [1-9]/);
    expect(await metrics.registry.getSingleMetricAsString('lo_p2p_requests_total')).toContain('method-not-allowed');
  });
});

describe('relaying from peers', () => {
  const blob = randomBytes(600_000);
  const digest = sha(blob);
  const good = new MemorySource();
  good.add(blob);
  const manifest = manifestDoc(digest, blob.length);
  const mDigest = good.add(manifest);
  good.tag('docker.io/team/app:2', { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: mDigest, size: manifest.length });
  const corrupt = new MemorySource();
  const broken = Buffer.from(blob);
  broken[300_000] ^= 0xff;
  corrupt.blobs.set(digest, broken); // claims the digest, holds other bytes

  async function peerOf(src: MemorySource, id: string, wrap?: http.RequestListener): Promise<TestPeer> {
    const { handler } = registry(src);
    return { id, url: await serve(wrap ?? handler) };
  }

  it('relays a blob from a peer, verified, and never relays a relayed request (hop header)', async () => {
    const router = new StaticRouter();
    const p = await peerOf(good, 'good');
    router.providers.set(digestKey(digest).toString(), [p]);
    router.providers.set(tagKey('docker.io', 'team/app', '2').toString(), [p]);
    const me = registry(new MemorySource(), { router, resolveTags: ['docker.io'] });
    const base = await serve(me.handler);
    const r = await fetch(`${base}/v2/team/app/blobs/${digest}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-length')).toBe(String(blob.length));
    expect(Buffer.from(await r.arrayBuffer()).equals(blob)).toBe(true);
    const t = await fetch(`${base}/v2/team/app/manifests/2?ns=docker.io`);
    expect(t.status).toBe(200);
    expect(t.headers.get('docker-content-digest')).toBe(mDigest);
    expect(Buffer.from(await t.arrayBuffer()).equals(manifest)).toBe(true);
    const hop = await fetch(`${base}/v2/team/app/blobs/${digest}`, { headers: { [HOP_HEADER]: '1' } });
    expect(hop.status).toBe(404);
    const ranged = await fetch(`${base}/v2/team/app/blobs/${digest}`, { headers: { range: 'bytes=10-19' } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(blob.subarray(10, 20))).toBe(true);
  });

  it('aborts the response when a peer serves the wrong bytes, then skips that peer for the digest', async () => {
    const router = new StaticRouter();
    const bad = await peerOf(corrupt, 'bad');
    router.providers.set(digestKey(digest).toString(), [bad]);
    const me = registry(new MemorySource(), { router });
    const base = await serve(me.handler);
    // The client must not receive a complete body: the last chunk is held back until the digest matches.
    const got = await new Promise<{ bytes: number; error: boolean }>((resolve) => {
      let bytes = 0;
      http.get(`${base}/v2/team/app/blobs/${digest}`, (res) => {
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('aborted', () => resolve({ bytes, error: true }));
        res.on('error', () => resolve({ bytes, error: true }));
        res.on('end', () => resolve({ bytes, error: false }));
      });
    });
    expect(got.error).toBe(true);
    expect(got.bytes).toBeLessThan(blob.length);
    expect(await me.metrics.registry.getSingleMetricAsString('lo_p2p_requests_total')).toMatch(/result="digest-mismatch"\} 1/);
    // Next time the bad peer is skipped: a clean 404 so containerd goes to its next host.
    expect((await fetch(`${base}/v2/team/app/blobs/${digest}`)).status).toBe(404);
  });

  it('continues from the next peer with a Range when a peer dies mid-body', async () => {
    const router = new StaticRouter();
    // A peer that sends 200 KB of the right bytes and then drops the connection.
    const dying = await peerOf(good, 'dying', (req, res) => {
      res.writeHead(200, { 'content-length': blob.length, 'content-type': 'application/octet-stream' });
      res.write(blob.subarray(0, 200_000), () => setTimeout(() => res.destroy(), 20));
    });
    const ranges: string[] = [];
    const { handler: goodHandler } = registry(good);
    const healthy = await peerOf(good, 'healthy', (req, res) => {
      ranges.push(String(req.headers.range ?? ''));
      goodHandler(req, res);
    });
    router.providers.set(digestKey(digest).toString(), [dying, healthy]);
    const me = registry(new MemorySource(), { router });
    const base = await serve(me.handler);
    const r = await fetch(`${base}/v2/team/app/blobs/${digest}`);
    expect(r.status).toBe(200);
    expect(Buffer.from(await r.arrayBuffer()).equals(blob)).toBe(true);
    expect(ranges).toHaveLength(1);
    expect(ranges[0]).toMatch(/^bytes=\d+-$/);
    expect(Number(ranges[0]!.slice(6, -1))).toBeGreaterThan(0);
    expect(await me.metrics.registry.getSingleMetricAsString('lo_p2p_peer_failovers_total')).toMatch(/ 1$/m);
  });

  it('stops reading from the peer when the client goes away mid-body (counted client-closed)', async () => {
    const big = randomBytes(8 << 20);
    const bigDigest = sha(big);
    const router = new StaticRouter();
    let peerClosedEarly: Promise<boolean> = Promise.resolve(false);
    // A peer that sends 1 MiB, pauses (the client leaves meanwhile), then sends the rest.
    const slow = await peerOf(good, 'slow-tail', (req, res) => {
      res.writeHead(200, { 'content-length': big.length, 'content-type': 'application/octet-stream' });
      peerClosedEarly = new Promise((resolve) => res.on('close', () => resolve(!res.writableFinished)));
      res.write(big.subarray(0, 1 << 20), () => setTimeout(() => res.end(big.subarray(1 << 20)), 300));
    });
    router.providers.set(digestKey(bigDigest).toString(), [slow]);
    const me = registry(new MemorySource(), { router });
    const base = await serve(me.handler);
    const got = await new Promise<number>((resolve, reject) => {
      const req = http.get(`${base}/v2/team/app/blobs/${bigDigest}`, (res) => {
        res.once('data', (c: Buffer) => {
          req.destroy();
          resolve(c.length);
        });
      });
      req.on('error', () => {});
      setTimeout(() => reject(new Error('no body within 5 s')), 5000);
    });
    expect(got).toBeGreaterThan(0);
    expect(await peerClosedEarly).toBe(true);
    const deadline = Date.now() + 3000;
    let text = '';
    while (Date.now() < deadline && !/result="client-closed"\} 1/.test(text)) {
      text = await me.metrics.registry.getSingleMetricAsString('lo_p2p_requests_total');
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(text).toMatch(/result="client-closed"\} 1/);
  });

  it('answers 404 at once when no peer is found within the resolve timeout', async () => {
    const router = new StaticRouter();
    router.delayMs = 500; // the DHT would answer, but too late
    router.providers.set(digestKey(digest).toString(), [await peerOf(good, 'slow')]);
    const me = registry(new MemorySource(), { router, resolveTimeoutMs: 20 });
    const base = await serve(me.handler);
    const t0 = performance.now();
    const r = await fetch(`${base}/v2/team/app/blobs/${digest}`);
    const ms = performance.now() - t0;
    expect(r.status).toBe(404);
    expect(ms).toBeLessThan(300);
    expect(await me.metrics.registry.getSingleMetricAsString('lo_p2p_resolve_duration_seconds')).toContain('found="false"');
  });
});

describe('agent wiring from the plan', () => {
  it('builds each agent command from plan.p2p and the node list', () => {
    const spec = parseSpec(
      JSON.stringify({
        apiVersion: 'cluster.lok8s.dev/v1beta1',
        kind: 'Lo',
        metadata: { name: 'lop2p-unit' },
        spec: { cluster: { domain: 'lok8s.dev' }, nodes: { workers: 2 }, registries: { p2p: { resolveTimeoutMs: 35 } } },
      }),
      { file: 'unit.yaml' },
    );
    const plan = planCluster(spec, { paths: { stateDir: '/tmp/lop2p-unit', caRoot: '/tmp/lop2p-unit/ca' } });
    const nodes = [
      { name: 'a', id: '1', ip: '10.0.0.2' },
      { name: 'b', id: '2', ip: '10.0.0.3' },
      { name: 'c', id: '3', ip: '10.0.0.4' },
    ];
    const args = agentArgs(plan, nodes[0]!, nodes, {});
    const flag = (f: string): string | undefined => args[args.indexOf(f) + 1];
    expect(args.slice(0, 2)).toEqual(['p2p', 'agent']);
    expect(flag('--port')).toBe('30020');
    expect(flag('--router-port')).toBe('30021');
    expect(flag('--peers')).toBe('10.0.0.3:30021,10.0.0.4:30021');
    expect(flag('--resolve-timeout-ms')).toBe('35');
    expect(flag('--registries')).toBe('docker.io,ghcr.io,quay.io,registry.k8s.io');
    expect(args).not.toContain('--resolve-latest');
    expect(plan.p2p.enabled).toBe(true);
  });
});

describe('agent hardening (issue 13)', () => {
  const blob = randomBytes(50_000);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));

  it('ignores a Range whose last position is before its first (RFC 9110): 200 with the whole blob', async () => {
    expect(parseRange('bytes=20-10', 100)).toBe('ignore');
    expect(parseRange('bytes=10-20', 100)).toEqual({ start: 10, end: 20 });
    const src = new MemorySource();
    const d = src.add(blob);
    const base = await serve(registry(src).handler);
    const r = await fetch(`${base}/v2/team/app/blobs/${d}`, { headers: { range: 'bytes=1999-1000' } });
    expect(r.status).toBe(200);
    expect(Buffer.from(await r.arrayBuffer()).equals(blob)).toBe(true);
  });

  it('serves only manifests and indexes on the manifest route, never a layer or a config blob', async () => {
    expect(manifestTypeOf(config)).toBeNull();
    expect(manifestTypeOf(blob)).toBeNull();
    expect(manifestTypeOf(Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] })))).toBe(
      'application/vnd.oci.image.index.v1+json',
    );
    const src = new MemorySource();
    const layer = src.add(blob);
    const cfg = src.add(config);
    const m = src.add(manifestDoc(layer, blob.length));
    const base = await serve(registry(src).handler);
    expect((await fetch(`${base}/v2/team/app/manifests/${layer}`)).status).toBe(404);
    expect((await fetch(`${base}/v2/team/app/manifests/${cfg}`)).status).toBe(404);
    expect((await fetch(`${base}/v2/team/app/blobs/${cfg}`)).status).toBe(200);
    expect((await fetch(`${base}/v2/team/app/manifests/${m}`)).status).toBe(200);
    // A peer that answers the manifest route with a blob (an old agent) is not relayed either.
    const { handler } = registry(src);
    const leaky = await serve((req, res) => {
      req.url = req.url!.replace('/manifests/', '/blobs/');
      handler(req, res);
    });
    const router = new StaticRouter();
    router.providers.set(digestKey(layer).toString(), [{ id: 'leaky', url: leaky }]);
    const me = await serve(registry(new MemorySource(), { router }).handler);
    expect((await fetch(`${me}/v2/team/app/manifests/${layer}`)).status).toBe(404);
    expect((await fetch(`${me}/v2/team/app/blobs/${layer}`)).status).toBe(200);
  });

  it('goes on to its peers when containerd is unavailable (no 500)', async () => {
    const peer = new MemorySource();
    const d = peer.add(blob);
    const m = peer.add(manifestDoc(d, blob.length));
    peer.tag('docker.io/team/app:3', { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: m, size: 0 });
    const down = new MemorySource();
    const unavailable = async (): Promise<never> => {
      throw new Error('14 UNAVAILABLE: No connection established');
    };
    down.stat = unavailable;
    down.resolveTag = unavailable;
    const router = new StaticRouter();
    const url = await serve(registry(peer).handler);
    router.providers.set(digestKey(d).toString(), [{ id: 'p', url }]);
    router.providers.set(tagKey('docker.io', 'team/app', '3').toString(), [{ id: 'p', url }]);
    const me = await serve(registry(down, { router, resolveTags: ['*'] }).handler);
    const r = await fetch(`${me}/v2/team/app/blobs/${d}`);
    expect(r.status).toBe(200);
    expect(Buffer.from(await r.arrayBuffer()).equals(blob)).toBe(true);
    expect((await fetch(`${me}/v2/team/app/manifests/3?ns=docker.io`)).status).toBe(200);
    expect((await fetch(`${me}/v2/team/app/blobs/sha256:${'1'.repeat(64)}`)).status).toBe(404);
  });

  it('takes a tag from peers only for registries in resolveTags (default none); digests still come from peers', async () => {
    const peer = new MemorySource();
    const d = peer.add(blob);
    const m = peer.add(manifestDoc(d, blob.length));
    // the peer claims team/app:4 -> m (it could claim any digest: a tag is not content-addressed)
    peer.tag('docker.io/team/app:4', { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: m, size: 0 });
    peer.tag('quay.io/team/app:4', { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: m, size: 0 });
    const url = await serve(registry(peer).handler);
    const router = new StaticRouter();
    for (const key of [digestKey(d), digestKey(m), tagKey('docker.io', 'team/app', '4'), tagKey('quay.io', 'team/app', '4')])
      router.providers.set(key.toString(), [{ id: 'p', url }]);
    const local = new MemorySource();
    const ld = local.add(Buffer.from('local layer'));
    const lm = local.add(manifestDoc(ld, 11));
    local.tag('docker.io/team/own:1', { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: lm, size: 0 });

    const byDefault = registry(local, { router });
    const me = await serve(byDefault.handler);
    const t = await fetch(`${me}/v2/team/app/manifests/4?ns=docker.io`);
    expect(t.status).toBe(404);
    expect(await t.text()).toContain('p2p.resolveTags');
    expect(await byDefault.metrics.registry.getSingleMetricAsString('lo_p2p_requests_total')).toMatch(
      /lo_p2p_requests_total\{route="manifest",source="none",result="tag-untrusted"\} 1$/m,
    );
    // this node's own tags (what its containerd resolved from the mirror) still answer
    const own = await fetch(`${me}/v2/team/own/manifests/1?ns=docker.io`);
    expect(own.status).toBe(200);
    expect(own.headers.get('docker-content-digest')).toBe(lm);
    // by digest the peer still serves, verified
    const byDigest = await fetch(`${me}/v2/team/app/manifests/${m}`);
    expect(byDigest.status).toBe(200);
    expect((await fetch(`${me}/v2/team/app/blobs/${d}`)).status).toBe(200);

    // opted in for docker.io only
    const some = await serve(registry(local, { router, resolveTags: ['docker.io'] }).handler);
    const ok = await fetch(`${some}/v2/team/app/manifests/4?ns=docker.io`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('docker-content-digest')).toBe(m);
    expect((await fetch(`${some}/v2/team/app/manifests/4?ns=quay.io`)).status).toBe(404);
    const all = await serve(registry(local, { router, resolveTags: ['*'] }).handler);
    expect((await fetch(`${all}/v2/team/app/manifests/4?ns=quay.io`)).status).toBe(200);
  });

  it('advertises only tags peers would take (resolveTags)', () => {
    const tags: LocalTag[] = [
      { registry: 'docker.io', repository: 'library/app', tag: '1.0', digest: 'sha256:a' },
      { registry: 'quay.io', repository: 'x', tag: '1.0', digest: 'sha256:b' },
    ];
    expect(advertisedTags(tags, [], false, [])).toEqual([]);
    expect(advertisedTags(tags, [], false, ['quay.io']).map((t) => t.registry)).toEqual(['quay.io']);
    expect(advertisedTags(tags, [], false, ['*'])).toHaveLength(2);
  });

  it('does not advertise latest when resolveLatest is off, nor tags of registries that are not mirrored', () => {
    const tags: LocalTag[] = [
      { registry: 'docker.io', repository: 'library/app', tag: 'latest', digest: 'sha256:a' },
      { registry: 'docker.io', repository: 'library/app', tag: '1.0', digest: 'sha256:a' },
      { registry: 'example.com', repository: 'x', tag: '1.0', digest: 'sha256:b' },
    ];
    expect(advertisedTags(tags, ['docker.io'], false).map((t) => t.tag)).toEqual(['1.0']);
    expect(advertisedTags(tags, ['docker.io'], true).map((t) => t.tag)).toEqual(['latest', '1.0']);
    expect(advertisedTags(tags, [], false)).toHaveLength(2);
  });

  it('never changes the mode of a file that is not a swarm key', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'lo-key-')), 'notes.txt');
    writeFileSync(file, 'my notes\n', { mode: 0o644 });
    chmodSync(file, 0o644);
    await expect(ensureSwarmKey(file)).rejects.toThrow(/is not a swarm key/);
    expect(statSync(file).mode & 0o777).toBe(0o644);
  });

  it('serves a blob only when containerd says the agent namespace holds it, whatever the content directory has', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lo-content-'));
    const held = sha(blob);
    const other = sha(config);
    mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(dir, 'blobs', 'sha256', held.slice(7)), blob);
    writeFileSync(join(dir, 'blobs', 'sha256', other.slice(7)), config); // held only in another namespace
    const def = protoLoader.loadSync(join(process.cwd(), 'src/agent/proto/content.proto'), { longs: Number, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as any;
    const server = new grpc.Server();
    const namespaces: string[] = [];
    server.addService(pkg.containerd.services.content.v1.Content.service, {
      Info(call: any, cb: any) {
        const ns = String(call.metadata.get('containerd-namespace')[0] ?? '');
        namespaces.push(ns);
        if (ns === 'k8s.io' && call.request.digest === held) cb(null, { info: { digest: held, size: blob.length } });
        else cb({ code: grpc.status.NOT_FOUND, details: 'not found' });
      },
    });
    const sock = join(dir, 'containerd.sock');
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
    const source = new ContainerdSource({ address: sock, contentDir: dir, namespace: 'k8s.io' });
    try {
      expect(await source.stat(held)).toEqual({ size: blob.length });
      expect(await source.stat(other)).toBeNull();
      expect(namespaces).toEqual(['k8s.io', 'k8s.io']);
      const body = await readLimited(await source.read(held, 0, blob.length - 1), 1 << 20);
      expect(body!.equals(blob)).toBe(true);
    } finally {
      await source.close();
      server.forceShutdown();
    }
  });

  it('bootstrap: a connected target is not redialled (tracked by peer id) and an unreachable one is logged once, then on change', () => {
    const lines: string[] = [];
    const st = new BootstrapState((l) => lines.push(l));
    const t = '/dns4/node-b/tcp/30021';
    expect(st.needsDial(t, new Set())).toBe(true);
    for (let i = 0; i < 5; i++) st.failed(t, 'connect ECONNREFUSED 10.0.0.3:30021');
    expect(lines).toHaveLength(1);
    st.failed(t, 'The operation was aborted due to timeout');
    expect(lines).toHaveLength(2);
    st.dialed(t, '12D3KooWPeerB');
    expect(lines[2]).toContain('connected to 12D3KooWPeerB');
    // Connected through another address (the IP, not the name dialled): still connected, no dial.
    expect(st.needsDial(t, new Set(['12D3KooWPeerB']))).toBe(false);
    expect(st.needsDial(t, new Set())).toBe(true);
    st.failed(t, 'connect ECONNREFUSED 10.0.0.3:30021');
    expect(lines).toHaveLength(4);
  });
});

describe('peers fetch over /lo/oci/1.0.0 only (issue 13)', () => {
  it('accepts only pulls of manifests and blobs as a peer request, with accept and range only', () => {
    const enc = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(
      parsePeerRequest(enc({ method: 'GET', path: `/v2/team/app/blobs/${digest}`, headers: { Range: 'bytes=0-9', cookie: 'x' } })),
    ).toEqual({ method: 'GET', path: `/v2/team/app/blobs/${digest}`, headers: { range: 'bytes=0-9' } });
    expect(parsePeerRequest(enc({ method: 'HEAD', path: '/v2/team/app/manifests/1?ns=docker.io&x=1', headers: {} }))?.path).toBe(
      '/v2/team/app/manifests/1?ns=docker.io',
    );
    for (const bad of [
      { method: 'PUT', path: `/v2/team/app/blobs/${digest}` },
      { method: 'GET', path: '/metrics' },
      { method: 'GET', path: '/v2/' },
      { method: 'GET', path: '/v2/_catalog' },
      { method: 'GET', path: 'http://evil/v2/team/app/blobs/x' },
    ])
      expect(parsePeerRequest(enc(bad))).toBeNull();
    expect(parsePeerRequest(new TextEncoder().encode('{not json'))).toBeNull();
  });

  it('two real agents on loopback: the registry binds 127.0.0.1, a blob moves over the stream, a node without the key gets nothing', async () => {
    const key = parseSwarmKey(generateSwarmKey());
    const blob = randomBytes(3 << 20);
    const held = new MemorySource();
    const digest = held.add(blob);
    const common = { port: 0, routerPort: 0, metricsPort: 0, publicHost: '127.0.0.1', resolveLatest: false, registries: [] };
    const a = await startAgent({ ...common, psk: key, bootstrap: [], resolveTimeoutMs: 2000 }, { source: held });
    const routerOf = (agent: typeof a): string => agent.router.addresses().find((m) => m.includes('/tcp/'))!;
    const b = await startAgent({ ...common, psk: key, bootstrap: [routerOf(a)], resolveTimeoutMs: 2000 }, { source: new MemorySource() });
    const other = parseSwarmKey(generateSwarmKey());
    const intruder = await startAgent(
      { ...common, psk: other, bootstrap: [routerOf(a)], resolveTimeoutMs: 300 },
      { source: new MemorySource() },
    );
    try {
      expect(new URL(a.url).hostname).toBe('127.0.0.1');
      expect(a.server.address()).toMatchObject({ address: '127.0.0.1' });
      // b finds a's copy in the DHT and fetches it on the stream; a answers from its own store (hop).
      expect((await pullUntil200(b, a, digest)).equals(blob)).toBe(true);
      const ranged = await fetch(`${b.url}/v2/team/app/blobs/${digest}`, { headers: { range: 'bytes=100-199' } });
      expect(ranged.status).toBe(206);
      expect(Buffer.from(await ranged.arrayBuffer()).equals(blob.subarray(100, 200))).toBe(true);
      const metricsOf = async (agent: typeof a): Promise<string> => (await fetch(agent.metricsUrl)).text();
      expect(await metricsOf(b)).toMatch(/lo_p2p_requests_total\{route="blob",source="peer",result="ok"\} [1-9]/);
      expect(await metricsOf(a)).toMatch(/lo_p2p_bytes_served_total\{source="local"\} [1-9]/);
      // The intruder (another key) never connects, so it can neither find nor open a stream to a.
      expect(intruder.router.peerCount()).toBe(0);
      expect((await fetch(`${intruder.url}/v2/team/app/blobs/${digest}`)).status).toBe(404);
      const aId = a.router.addresses()[0]!.split('/p2p/')[1]!;
      await expect(
        intruder.router.fetch(
          { id: aId },
          { method: 'GET', path: `/v2/team/app/blobs/${digest}`, headers: {} },
          1000,
          AbortSignal.timeout(3000),
        ),
      ).rejects.toThrow();
    } finally {
      for (const agent of [intruder, b, a]) await agent.close();
    }
  }, 30_000);
});

/** Pulls a blob through `agent` until it finds `from`'s copy (announced again before each try). */
async function pullUntil200(agent: Awaited<ReturnType<typeof startAgent>>, from: typeof agent, digest: string): Promise<Buffer> {
  let got: Response | null = null;
  for (let i = 0; i < 40 && got?.status !== 200; i++) {
    await from.sync();
    got = await fetch(`${agent.url}/v2/team/app/blobs/${digest}`);
    if (got.status !== 200) await new Promise((r) => setTimeout(r, 100));
  }
  expect(got!.status).toBe(200);
  return Buffer.from(await got!.arrayBuffer());
}

describe('the TLS-PSK data path between agents', () => {
  const common = { port: 0, routerPort: 0, metricsPort: 0, resolveLatest: false, registries: [] };
  const routerOf = (agent: Awaited<ReturnType<typeof startAgent>>): string => agent.router.addresses().find((m) => m.includes('/tcp/'))!;
  /** Two agents on two loopback addresses with the same data port, as on a cluster network; b bootstraps from a. */
  const startPair = async (held: MemorySource, o: { resolveTimeoutMs: number; aDataPort?: boolean }) => {
    const key = parseSwarmKey(generateSwarmKey());
    // free on every address: the agents of a cluster share their data port
    const dataPort = await freePort('0.0.0.0');
    const aPort = o.aDataPort === false ? {} : { dataPort };
    const a = await startAgent(
      { ...common, ...aPort, publicHost: '127.0.0.1', psk: key, bootstrap: [], resolveTimeoutMs: o.resolveTimeoutMs },
      { source: held },
    );
    const b = await startAgent(
      { ...common, publicHost: '127.0.0.2', dataPort, psk: key, bootstrap: [routerOf(a)], resolveTimeoutMs: o.resolveTimeoutMs },
      { source: new MemorySource() },
    );
    return { key, dataPort, a, b };
  };
  const fetchesOf = async (agent: Awaited<ReturnType<typeof startAgent>>, transport: string): Promise<number> => {
    const text = await (await fetch(agent.metricsUrl)).text();
    return Number(new RegExp(`lo_p2p_peer_fetches_total\\{transport="${transport}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
  };

  it('derives its key from the swarm key with a label: stable, 32 bytes, not the swarm key, different per cluster', () => {
    const key = parseSwarmKey(generateSwarmKey());
    expect(dataKeyOf(key).equals(dataKeyOf(key))).toBe(true);
    expect(dataKeyOf(key)).toHaveLength(32);
    expect(Buffer.from(key).includes(dataKeyOf(key))).toBe(false);
    expect(dataKeyOf(key).equals(dataKeyOf(parseSwarmKey(generateSwarmKey())))).toBe(false);
  });

  it('moves a blob over the data port, refuses another key at the handshake, serves local content only and pulls only', async () => {
    const blob = randomBytes(3 << 20);
    const held = new MemorySource();
    const digest = held.add(blob);
    const { key, dataPort, a, b } = await startPair(held, { resolveTimeoutMs: 2000 });
    let handshakes = 0;
    a.dataServer!.on('secureConnection', () => handshakes++);
    const good = createDataClient(dataKeyOf(key));
    const wrong = createDataClient(dataKeyOf(parseSwarmKey(generateSwarmKey())));
    const pull = { method: 'GET' as const, path: `/v2/team/app/blobs/${digest}`, headers: {} };
    try {
      expect(a.dataServer!.address()).toMatchObject({ address: '127.0.0.1', port: dataPort });
      expect((await pullUntil200(b, a, digest)).equals(blob)).toBe(true);
      const ranged = await fetch(`${b.url}/v2/team/app/blobs/${digest}`, { headers: { range: 'bytes=100-199' } });
      expect(ranged.status).toBe(206);
      expect(Buffer.from(await ranged.arrayBuffer()).equals(blob.subarray(100, 200))).toBe(true);
      // Every pull went over the data port, none over the libp2p stream.
      expect(await fetchesOf(b, 'data')).toBeGreaterThanOrEqual(2);
      expect(await fetchesOf(b, 'stream')).toBe(0);

      // HEADs reuse the warm keep-alive connection (their empty answers are read to the end, not cut).
      const before = handshakes;
      for (let i = 0; i < 5; i++) expect((await fetch(`${b.url}/v2/team/app/blobs/${digest}`, { method: 'HEAD' })).status).toBe(200);
      expect(handshakes - before).toBeLessThanOrEqual(1);

      // Another key: the TLS handshake fails (bad record mac), no HTTP request is ever read.
      await expect(good.fetch('https://127.0.0.1:' + dataPort, pull, 2000, AbortSignal.timeout(3000))).resolves.toMatchObject({
        status: 200,
      });
      await expect(wrong.fetch('https://127.0.0.1:' + dataPort, pull, 2000, AbortSignal.timeout(3000))).rejects.toThrow(
        /EPROTO|alert|handshake|mac/i,
      );
      // Plain HTTP on the data port gets no answer either.
      await expect(fetch(`http://127.0.0.1:${dataPort}${pull.path}`, { signal: AbortSignal.timeout(3000) })).rejects.toThrow();

      // No onward relay: b answers its data port from its own store only, although b itself would find a's copy.
      const viaB = await good.fetch('https://127.0.0.2:' + dataPort, pull, 2000, AbortSignal.timeout(3000));
      viaB.body.resume();
      expect(viaB.status).toBe(404);
      expect((await fetch(`${b.url}${pull.path}`)).status).toBe(200);

      // Only pulls of manifests and blobs: anything else is 400 before the registry sees it.
      for (const path of ['/v2/', '/v2/_catalog', '/metrics']) {
        const r = await good.fetch('https://127.0.0.1:' + dataPort, { ...pull, path }, 2000, AbortSignal.timeout(3000));
        r.body.resume();
        expect(r.status).toBe(400);
      }
    } finally {
      good.close();
      wrong.close();
      for (const agent of [b, a]) await agent.close();
    }
  }, 30_000);

  it('asks connected peers directly: content that is in no DHT record is still found, and a miss is still a 404', async () => {
    const held = new MemorySource();
    const { a, b } = await startPair(held, { resolveTimeoutMs: 50 });
    try {
      for (let i = 0; i < 50 && b.router.peerCount() === 0; i++) await new Promise((r) => setTimeout(r, 100));
      // Let the advertising passes after the connection run; then a gets a blob no event announces.
      await new Promise((r) => setTimeout(r, 800));
      const blob = randomBytes(1 << 20);
      const digest = held.add(blob);
      const got = await fetch(`${b.url}/v2/team/app/blobs/${digest}`);
      expect(got.status).toBe(200);
      expect(Buffer.from(await got.arrayBuffer()).equals(blob)).toBe(true);
      expect((await fetch(`${b.url}/v2/team/app/blobs/sha256:${'0'.repeat(64)}`)).status).toBe(404);
    } finally {
      for (const agent of [b, a]) await agent.close();
    }
  }, 30_000);

  it('in a small cluster asks the connected peer first: a HEAD takes one request to it and no DHT query; the GET after it goes to the remembered provider', async () => {
    const held = new MemorySource();
    const { a, b } = await startPair(held, { resolveTimeoutMs: 2000 });
    try {
      for (let i = 0; i < 50 && b.router.peerCount() === 0; i++) await new Promise((r) => setTimeout(r, 100));
      const blob = randomBytes(1 << 20);
      const digest = held.add(blob);
      // The real DHT of b, counted: findProviders is what every DHT lookup of the router calls.
      const routing = b.router.node.contentRouting;
      const findProviders = routing.findProviders.bind(routing);
      let dhtQueries = 0;
      routing.findProviders = (...args: Parameters<typeof findProviders>) => {
        dhtQueries++;
        return findProviders(...args);
      };
      const atA: string[] = [];
      a.dataServer!.on('request', (req: http.IncomingMessage) => {
        if (req.url?.includes(digest)) atA.push(`${req.method} ${req.url}`);
      });
      const path = `/v2/team/app/blobs/${digest}`;
      const head = await fetch(`${b.url}${path}`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-length')).toBe(String(blob.length));
      expect(atA).toEqual([`HEAD ${path}`]); // the direct ask was the answer: the peer was not asked again
      const got = await fetch(`${b.url}${path}`);
      expect(got.status).toBe(200);
      expect(Buffer.from(await got.arrayBuffer()).equals(blob)).toBe(true);
      expect(atA).toEqual([`HEAD ${path}`, `GET ${path}`]); // provider remembered: no second ask
      expect(dhtQueries).toBe(0);
      // A miss: a asked (404), then the DHT, then 404.
      const missing = `/v2/team/app/blobs/sha256:${'1'.repeat(64)}`;
      expect((await fetch(`${b.url}${missing}`, { method: 'HEAD' })).status).toBe(404);
      expect(dhtQueries).toBe(1);
    } finally {
      for (const agent of [b, a]) await agent.close();
    }
  }, 30_000);

  it('falls back to the /lo/oci/1.0.0 stream when the peer has no data port', async () => {
    const blob = randomBytes(1 << 20);
    const held = new MemorySource();
    const digest = held.add(blob);
    // a runs without a data port (an older agent, or the port filtered): b's data pull is refused, the stream carries it.
    const { a, b } = await startPair(held, { resolveTimeoutMs: 2000, aDataPort: false });
    try {
      expect(a.dataServer).toBeNull();
      expect((await pullUntil200(b, a, digest)).equals(blob)).toBe(true);
      expect(await fetchesOf(b, 'stream')).toBeGreaterThanOrEqual(1);
      expect(await fetchesOf(b, 'data')).toBe(0);
    } finally {
      for (const agent of [b, a]) await agent.close();
    }
  }, 30_000);
});
