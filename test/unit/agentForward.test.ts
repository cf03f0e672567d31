/**
 * The agent's rewrite forwarding against real servers on loopback (no Docker): Debian's docker-registry
 * binary (distribution 2.8) serving a pushed image under mirrorproject/rancher-images/pause:3.6, plain, with
 * TLS from the test's CA and a client certificate requirement, and with distribution's bearer-token auth from
 * a token server in the test; a path-prefix front (override_path) with a static Authorization header that
 * redirects blobs. A forward-only agent runs in process with hosts.toml files the test writes.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, createSign, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { freePort } from '../helpers/net.js';
import { makeTestCa, makeTestLeaf } from '../helpers/tls.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/adapters/oci/registryClient.js';
import type { ContentSource, Descriptor } from '../../src/agent/contentSource.js';
import { startForwardAgent, type RunningForwardAgent } from '../../src/agent/forwardAgent.js';
import { createForwarder } from '../../src/agent/forward/forwarder.js';
import { createMetrics } from '../../src/agent/metrics.js';
import { createRegistryHandler } from '../../src/agent/registry.js';
import { HOP_HEADER } from '../../src/agent/registry/request.js';
import { parseRewrites } from '../../src/agent/forward/rewrites.js';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const root = mkdtempSync(join(tmpdir(), 'lo-forward-'));
const store = join(root, 'store');
const hostsDir = join(root, 'certs.d');
const openssl = (args: string[]): void => void execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: root });

interface Registry {
  url: string;
  proc: ChildProcess;
  log: () => string;
}

/** docker-registry on 127.0.0.1 with the shared storage; waits (bounded) until /v2/ answers. */
async function startRegistry(name: string, extra: string, scheme: 'http' | 'https' = 'http'): Promise<Registry> {
  const port = await freePort();
  const config = join(root, `${name}.yml`);
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: ${store}\nhttp:\n  addr: 127.0.0.1:${port}\n  secret: ${randomBytes(8).toString('hex')}\n${extra}`,
  );
  const proc = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  for (let i = 0; i < 100; i++) {
    if (/listening on/.test(out)) return { url: `${scheme}://127.0.0.1:${port}`, proc, log: () => out };
    if (proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`docker-registry ${name} did not start: ${out}`);
}

/** A server on loopback; `seen` records request lines. */
async function serve(handler: http.RequestListener): Promise<{ url: string; server: http.Server; seen: string[] }> {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, seen };
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

// The image: a config and one layer, as an OCI manifest.
const layer = randomBytes(300_000);
const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(layer)] } }));
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layer), size: layer.length }],
  }),
);
const REPO = 'mirrorproject/rancher-images/pause';
const SECRET_BASIC = Buffer.from('puller:s3cret-pw').toString('base64');
const STATIC_TOKEN = 'static-key-1234567890';

let plain: Registry;
let tls: Registry;
let token: Registry;
let tokenServer: Awaited<ReturnType<typeof serve>>;
let prefix: Awaited<ReturnType<typeof serve>>;
let agent: RunningForwardAgent;
const agentLog: string[] = [];
const servers: http.Server[] = [];
const netServers: net.Server[] = [];
const held: net.Socket[] = [];
const BIG = 64 << 20;
let big: Awaited<ReturnType<typeof serve>>;
let bigProduced = 0;

function writeHosts(registry: string, body: string): void {
  mkdirSync(join(hostsDir, registry), { recursive: true });
  writeFileSync(join(hostsDir, registry, 'hosts.toml'), body);
}

beforeAll(async () => {
  mkdirSync(store);
  // TLS material: the test's CA, a server certificate for 127.0.0.1, a client certificate, a token signing cert.
  const ca = makeTestCa(root, 'ca');
  makeTestLeaf(root, ca, 'server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth');
  makeTestLeaf(root, ca, 'client', 'extendedKeyUsage=clientAuth');
  openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'token.key',
    '-out',
    'token.crt',
    '-days',
    '2',
    '-subj',
    '/CN=lo forward test token signer',
  ]);

  plain = await startRegistry('plain', '');
  const c = new RegistryClient(plain.url);
  for (const b of [config, layer]) await c.pushBlob(REPO, Readable.from([b]), { digest: sha(b), size: b.length });
  await c.putManifest(REPO, '3.6', { bytes: manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json' });
  c.close();

  tls = await startRegistry(
    'tls',
    `  tls:\n    certificate: ${join(root, 'server.crt')}\n    key: ${join(root, 'server.key')}\n    clientcas:\n      - ${join(root, 'ca.crt')}\n`,
    'https',
  );

  // distribution's token auth: a JWT signed by the token certificate (x5c), with pull access to the repository.
  const signerKey = readFileSync(join(root, 'token.key'), 'utf8');
  const signerDer = Buffer.from(readFileSync(join(root, 'token.crt'), 'utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64');
  tokenServer = await serve((req, res) => {
    const u = new URL(req.url ?? '/', 'http://t');
    if (req.headers.authorization !== `Basic ${SECRET_BASIC}`) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="token"' });
      return res.end();
    }
    const scope = u.searchParams.get('scope') ?? '';
    const [, name, actions] = /^repository:([^:]+):(.+)$/.exec(scope) ?? [];
    const now = Math.floor(Date.now() / 1000);
    const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5c: [signerDer.toString('base64')] }));
    const claims = b64url(
      JSON.stringify({
        iss: 'lo-test-issuer',
        sub: 'puller',
        aud: u.searchParams.get('service'),
        exp: now + 300,
        nbf: now - 10,
        iat: now,
        jti: randomBytes(8).toString('hex'),
        access: name ? [{ type: 'repository', name, actions: actions!.split(',') }] : [],
      }),
    );
    const sig = createSign('RSA-SHA256').update(`${head}.${claims}`).sign(signerKey);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token: `${head}.${claims}.${b64url(sig)}`, expires_in: 300 }));
  });
  servers.push(tokenServer.server);
  token = await startRegistry(
    'token',
    `auth:\n  token:\n    realm: ${tokenServer.url}/token\n    service: lo-test-registry\n    issuer: lo-test-issuer\n    rootcertbundle: ${join(root, 'token.crt')}\n`,
  );

  // An Artifactory-like front: /api/docker/remote/<repo>/... (no /v2), a static token, blobs redirected to the registry.
  prefix = await serve((req, res) => {
    if (req.headers.authorization !== `Bearer ${STATIC_TOKEN}`) {
      res.writeHead(403);
      return res.end();
    }
    const m = /^\/api\/docker\/remote\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(req.url ?? '');
    if (!m) {
      res.writeHead(404);
      return res.end();
    }
    if (m[2] === 'blobs') {
      res.writeHead(307, { location: `${plain.url}/v2/${m[1]}/blobs/${m[3]}` });
      return res.end();
    }
    const up = http.request(
      `${plain.url}/v2/${m[1]}/manifests/${m[3]}`,
      { method: req.method, headers: { accept: req.headers.accept ?? '*/*' } },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.end();
  });
  servers.push(prefix.server);
  const dead = await freePort();
  // A host that accepts connections and never answers (the first-byte timeout moves on from it).
  const silent = net.createServer((sock) => held.push(sock));
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  netServers.push(silent);
  // A host with a large blob, counting what it has produced (pulled by back-pressure).
  big = await serve((req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG });
    const chunk = Buffer.alloc(64 << 10, 7);
    async function* body(): AsyncGenerator<Buffer> {
      for (let n = 0; n < BIG; n += chunk.length) {
        bigProduced += chunk.length;
        yield chunk;
      }
    }
    Readable.from(body()).pipe(res);
  });
  servers.push(big.server);

  const port = await freePort();
  const self = `[host."http://127.0.0.1:${port}"]\n  capabilities = ["pull", "resolve"]\n`;
  // docker.io: the agent, a dead host, a host without the image (404), then the registry.
  const empty = await serve((_req, res) => {
    res.writeHead(404);
    res.end();
  });
  servers.push(empty.server);
  writeHosts(
    'docker.io',
    `server = "https://registry-1.docker.io"\n\n${self}\n[host."http://127.0.0.1:${dead}"]\n  capabilities = ["pull", "resolve"]\n\n[host."${empty.url}"]\n  capabilities = ["pull", "resolve"]\n\n[host."${plain.url}"]\n  capabilities = ["pull", "resolve"]\n`,
  );
  writeHosts(
    'tls.example',
    `${self}\n[host."${tls.url}"]\n  ca = "/etc/containerd/certs.d/tls.example/ca.crt"\n  client = [["client.crt", "client.key"]]\n`,
  );
  for (const f of ['ca.crt', 'client.crt', 'client.key']) writeFileSync(join(hostsDir, 'tls.example', f), readFileSync(join(root, f)));
  writeHosts('noclient.example', `${self}\n[host."${tls.url}"]\n  ca = "${join(root, 'ca.crt')}"\n`);
  writeHosts(
    'token.example',
    `${self}\n[host."${token.url}"]\n  [host."${token.url}".header]\n    Authorization = "Basic ${SECRET_BASIC}"\n`,
  );
  writeHosts(
    'prefix.example',
    `${self}\n[host."${prefix.url}/api/docker/remote"]\n  override_path = true\n  [host."${prefix.url}/api/docker/remote".header]\n    Authorization = "Bearer ${STATIC_TOKEN}"\n`,
  );
  writeHosts('dead.example', `${self}\n[host."http://127.0.0.1:${dead}"]\n`);
  writeHosts('slow.example', `${self}\n[host."http://127.0.0.1:${(silent.address() as AddressInfo).port}"]\n[host."${plain.url}"]\n`);
  writeHosts('big.example', `${self}\n[host."${big.url}"]\n`);
  writeHosts('pullonly.example', `${self}\n[host."${plain.url}"]\n  capabilities = ["pull"]\n`);

  const rule = [['^rancher/(.*)', 'mirrorproject/rancher-images/$1']];
  agent = await startForwardAgent({
    port,
    metricsPort: 0,
    host: '127.0.0.1',
    publicHost: '127.0.0.1',
    rewrites: parseRewrites(JSON.stringify({ 'docker.io': rule, '*': rule })),
    hostsDir,
    timeouts: { firstByteMs: 1000 },
    log: (m) => agentLog.push(m),
  });
}, 60_000);

afterAll(async () => {
  await agent?.close();
  for (const r of [plain, tls, token]) r?.proc.kill();
  for (const s of servers) s.close();
  for (const s of held) s.destroy();
  for (const s of netServers) s.close();
  rmSync(root, { recursive: true, force: true });
});

async function get(path: string, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  const res = await fetch(`${agent.url}${path}`, {
    method,
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json' },
  });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: Object.fromEntries(res.headers), body };
}

const logLines = (r: Registry, needle: string): number =>
  r
    .log()
    .split('\n')
    .filter((l) => l.includes(needle)).length;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** docker-registry writes its access log line after the response: wait for it (bounded, 3 s). */
async function logged(r: Registry, needle: string): Promise<number> {
  for (let i = 0; i < 30 && logLines(r, needle) === 0; i++) await sleep(100);
  return logLines(r, needle);
}
/** Access-log lines (one per request the registry answered). */
const requestCount = (r: Registry): number => logLines(r, ' HTTP/1.1" ');

describe('forward-only agent: rewritten names to the hosts of hosts.toml', () => {
  it('docker.io/rancher/pause:3.6 is fetched as mirrorproject/rancher-images/pause:3.6, past a dead host and a 404 host', async () => {
    const m = await get('/v2/rancher/pause/manifests/3.6?ns=docker.io');
    expect(m.status).toBe(200);
    expect(m.headers['docker-content-digest']).toBe(sha(manifest));
    expect(sha(m.body)).toBe(sha(manifest));
    expect(m.headers['content-type']).toBe('application/vnd.oci.image.manifest.v1+json');
    const head = await get('/v2/rancher/pause/manifests/3.6?ns=docker.io', 'HEAD');
    expect([head.status, head.headers['docker-content-digest'], head.headers['content-length'], head.body.length]).toEqual([
      200,
      sha(manifest),
      String(manifest.length),
      0,
    ]);
    for (const b of [config, layer]) {
      const r = await get(`/v2/rancher/pause/blobs/${sha(b)}?ns=docker.io`);
      expect([r.status, sha(r.body)]).toEqual([200, sha(b)]);
    }
    // the registry saw the rewritten name, never the original
    expect(await logged(plain, `GET /v2/${REPO}/manifests/3.6`)).toBeGreaterThanOrEqual(1);
    expect(await logged(plain, `HEAD /v2/${REPO}/manifests/3.6`)).toBeGreaterThanOrEqual(1);
    expect(await logged(plain, `GET /v2/${REPO}/blobs/${sha(layer)}`)).toBeGreaterThanOrEqual(1);
    expect(await logged(plain, `GET /v2/${REPO}/blobs/${sha(config)}`)).toBeGreaterThanOrEqual(1);
    expect(logLines(plain, '/v2/rancher/')).toBe(0);
    expect(
      agentLog.some(
        (l) => l.includes(`GET docker.io rancher/pause -> ${REPO} manifests/3.6 via ${plain.url}`) && /ECONNREFUSED|refused/.test(l),
      ),
    ).toBe(true);
  });

  it('a name no rule matches gets 404 at once: no request reaches any host', async () => {
    await sleep(300);
    const before = requestCount(plain);
    expect(before).toBeGreaterThan(0);
    const r = await get('/v2/library/alpine/manifests/3.20?ns=docker.io');
    expect(r.status).toBe(404);
    const b = await get(`/v2/library/alpine/blobs/${sha(layer)}?ns=docker.io`);
    expect(b.status).toBe(404);
    await sleep(300);
    expect(requestCount(plain)).toBe(before);
    expect(logLines(plain, 'alpine')).toBe(0);
    expect(await (await fetch(agent.metricsUrl)).text()).toMatch(
      /lo_p2p_forwards_total\{registry="docker.io",result="rewrite-nomatch"\} 2/,
    );
  });

  it('TLS with the test CA (an absolute path under /etc/containerd/certs.d read under --hosts-dir) and a client certificate', async () => {
    const r = await get('/v2/rancher/pause/manifests/3.6?ns=tls.example');
    expect([r.status, r.headers['docker-content-digest']]).toEqual([200, sha(manifest)]);
    const blob = await get(`/v2/rancher/pause/blobs/${sha(layer)}?ns=tls.example`);
    expect(sha(blob.body)).toBe(sha(layer));
    expect(await logged(tls, `/v2/${REPO}/manifests/3.6`)).toBeGreaterThanOrEqual(1);
    // the same registry without a client certificate refuses the handshake: 502, no other host
    const no = await get('/v2/rancher/pause/manifests/3.6?ns=noclient.example');
    expect(no.status).toBe(502);
  });

  it('a bearer challenge: token fetched from the realm with the static Basic header, cached, retried once', async () => {
    const r = await get('/v2/rancher/pause/manifests/3.6?ns=token.example');
    expect([r.status, r.headers['docker-content-digest']]).toEqual([200, sha(manifest)]);
    const blob = await get(`/v2/rancher/pause/blobs/${sha(layer)}?ns=token.example`);
    expect([blob.status, sha(blob.body)]).toEqual([200, sha(layer)]);
    expect(tokenServer.seen).toHaveLength(1);
    expect(tokenServer.seen[0]).toContain(`scope=${encodeURIComponent(`repository:${REPO}:pull`)}`);
    expect(tokenServer.seen[0]).toContain('service=lo-test-registry');
    // one 401 for the first request only; the second went with the cached token
    expect(await logged(token, `GET /v2/${REPO}/blobs/${sha(layer)} HTTP/1.1" 200`)).toBe(1);
    expect(await logged(token, `GET /v2/${REPO}/manifests/3.6 HTTP/1.1" 200`)).toBe(1);
    expect(logLines(token, `GET /v2/${REPO}/manifests/3.6 HTTP/1.1" 401`)).toBe(1);
    expect(logLines(token, `" 401 `)).toBe(1);
  });

  it('override_path: the path prefix as written (no /v2), a static Authorization header, a blob redirect followed', async () => {
    const r = await get('/v2/rancher/pause/manifests/3.6?ns=prefix.example');
    expect([r.status, r.headers['docker-content-digest']]).toEqual([200, sha(manifest)]);
    const blob = await get(`/v2/rancher/pause/blobs/${sha(layer)}?ns=prefix.example`);
    expect([blob.status, sha(blob.body)]).toEqual([200, sha(layer)]);
    expect(prefix.seen).toEqual([`GET /api/docker/remote/${REPO}/manifests/3.6`, `GET /api/docker/remote/${REPO}/blobs/${sha(layer)}`]);
  });

  it('unknown tags 404 after every host; all hosts down is a 502; capabilities are honoured; push is 405', async () => {
    expect((await get('/v2/rancher/pause/manifests/9.9?ns=docker.io')).status).toBe(404);
    const dead = await get('/v2/rancher/pause/manifests/3.6?ns=dead.example');
    expect(dead.status).toBe(502);
    expect(dead.body.toString()).toMatch(/UNAVAILABLE/);
    // pull only: a tag is not resolved there (404, nothing forwarded), a digest is
    expect((await get('/v2/rancher/pause/manifests/3.6?ns=pullonly.example')).status).toBe(404);
    expect((await get(`/v2/rancher/pause/manifests/${sha(manifest)}?ns=pullonly.example`)).status).toBe(200);
    expect((await get('/v2/rancher/pause/manifests/3.6')).status).toBe(404);
    expect((await fetch(`${agent.url}/v2/rancher/pause/blobs/uploads/`, { method: 'POST' })).status).toBe(405);
    const metrics = await (await fetch(agent.metricsUrl)).text();
    expect(metrics).toMatch(/lo_p2p_forwards_total\{registry="docker.io",result="ok"\} [1-9]/);
    expect(metrics).toMatch(/lo_p2p_forwards_total\{registry="dead.example",result="failed"\} 1/);
    expect(metrics).toMatch(/lo_p2p_forwards_total\{registry="pullonly.example",result="no-hosts"\} 1/);
  });

  it('a host that accepts but never answers is left after the first-byte timeout; the next one answers', async () => {
    const t0 = performance.now();
    const r = await get('/v2/rancher/pause/manifests/3.6?ns=slow.example');
    expect([r.status, r.headers['docker-content-digest']]).toEqual([200, sha(manifest)]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(900);
    expect(
      agentLog.some((l) => l.includes('forward GET slow.example') && l.includes('no answer from') && l.includes('within 1000 ms')),
    ).toBe(true);
  });

  it('a 64 MiB blob streams with back-pressure: a client that stops reading stops the upstream too', async () => {
    const digest = `sha256:${'b'.repeat(64)}`;
    const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http.get(`${agent.url}/v2/rancher/big/blobs/${digest}?ns=big.example`, resolve).on('error', reject),
    );
    expect(res.statusCode).toBe(200);
    res.pause();
    // what sits in socket and stream buffers, bounded; far less than the blob
    await sleep(1000);
    const whilePaused = bigProduced;
    await sleep(300);
    expect(bigProduced).toBe(whilePaused);
    expect(whilePaused).toBeLessThan(16 << 20);
    let got = 0;
    res.on('data', (c: Buffer) => (got += c.length));
    res.resume();
    await once(res, 'end');
    expect([got, bigProduced]).toEqual([BIG, BIG]);
  });

  it('header values (secrets) never reach the log', () => {
    const all = agentLog.join('\n');
    expect(all).toContain('forward GET token.example');
    for (const secret of [SECRET_BASIC, STATIC_TOKEN, 's3cret-pw']) expect(all).not.toContain(secret);
    expect(all).not.toMatch(/Bearer ey/);
  });
});

/** This node's content (containerd's, in memory): blobs by digest, images by their original name. */
function memorySource(blobs: Buffer[], tags: Record<string, Descriptor>): ContentSource {
  const byDigest = new Map(blobs.map((b) => [sha(b), b]));
  return {
    resolveTag: async (registry, repository, tag) => tags[`${registry}/${repository}:${tag}`] ?? null,
    stat: async (d) => (byDigest.has(d) ? { size: byDigest.get(d)!.length } : null),
    read: async (d, start, end) => Readable.from([byDigest.get(d)!.subarray(start, end + 1)]),
    listDigests: async () => [...byDigest.keys()],
    listTags: async () => [],
    watch: () => () => {},
    close: async () => {},
  };
}

describe('with P2P on: this node first, then the rewritten name upstream', () => {
  let url = '';
  const metrics = createMetrics();
  let forwarder: ReturnType<typeof createForwarder>;
  beforeAll(async () => {
    const port = await freePort();
    const dir = join(root, 'p2p-certs.d');
    mkdirSync(join(dir, 'docker.io'), { recursive: true });
    writeFileSync(join(dir, 'docker.io', 'hosts.toml'), `[host."http://127.0.0.1:${port}"]\n[host."${plain.url}"]\n`);
    forwarder = createForwarder({ hostsDir: dir, self: [`http://127.0.0.1:${port}`], metrics, log: (m) => agentLog.push(m) });
    const handler = createRegistryHandler({
      source: memorySource([manifest, config], {
        'docker.io/rancher/pause:3.6': {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: sha(manifest),
          size: manifest.length,
        },
      }),
      router: null,
      metrics,
      resolveTimeoutMs: 20,
      resolveLatest: false,
      rewrites: { table: parseRewrites('{"docker.io":[["^rancher/(.*)","mirrorproject/rancher-images/$1"]]}'), forwarder, metrics },
    });
    const server = http.createServer(handler);
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    servers.push(server);
    url = `http://127.0.0.1:${port}`;
  });
  afterAll(() => forwarder?.close());

  it('held content is served from this node under the original name; a blob it lacks is forwarded as the rewritten name', async () => {
    await sleep(300);
    const before = requestCount(plain);
    const m = await fetch(`${url}/v2/rancher/pause/manifests/3.6?ns=docker.io`);
    expect([m.status, m.headers.get('docker-content-digest')]).toEqual([200, sha(manifest)]);
    const c = await fetch(`${url}/v2/rancher/pause/blobs/${sha(config)}?ns=docker.io`);
    expect(sha(Buffer.from(await c.arrayBuffer()))).toBe(sha(config));
    await sleep(300);
    expect(requestCount(plain)).toBe(before);
    const forwardedBefore = logLines(plain, `GET /v2/${REPO}/blobs/${sha(layer)}`);
    const l = await fetch(`${url}/v2/rancher/pause/blobs/${sha(layer)}?ns=docker.io`);
    expect([l.status, sha(Buffer.from(await l.arrayBuffer()))]).toEqual([200, sha(layer)]);
    for (let i = 0; i < 30 && logLines(plain, `GET /v2/${REPO}/blobs/${sha(layer)}`) === forwardedBefore; i++) await sleep(100);
    expect(logLines(plain, `GET /v2/${REPO}/blobs/${sha(layer)}`)).toBe(forwardedBefore + 1);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/lo_p2p_requests_total\{route="blob",source="upstream",result="ok"\} 1/);
    expect(text).toMatch(/lo_p2p_requests_total\{route="manifest",source="local",result="ok"\} 1/);
  });

  it('latest (not resolved by the P2P mirror) goes upstream; unmatched names take the usual P2P answer; a hop from a peer is never forwarded', async () => {
    const latest = await fetch(`${url}/v2/rancher/pause/manifests/latest?ns=docker.io`);
    expect(latest.status).toBe(404);
    expect(await logged(plain, `GET /v2/${REPO}/manifests/latest`)).toBe(1);
    const unmatched = await fetch(`${url}/v2/library/alpine/manifests/3?ns=docker.io`);
    expect(unmatched.status).toBe(404);
    const before = logLines(plain, `/blobs/${sha(layer)}`);
    const hop = await fetch(`${url}/v2/rancher/pause/blobs/${sha(layer)}?ns=docker.io`, { headers: { [HOP_HEADER]: '1' } });
    expect(hop.status).toBe(404);
    await sleep(300);
    expect(logLines(plain, `/blobs/${sha(layer)}`)).toBe(before);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/lo_p2p_requests_total\{route="manifest",source="none",result="tag-untrusted"\} 1/);
    expect(text).not.toMatch(/result="rewrite-nomatch"/);
  });
});
