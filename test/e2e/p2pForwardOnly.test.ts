/**
 * `lo p2p agent --forward-only` as the built CLI runs it (bin/lo.js, after `npm run build`), no Docker: the
 * process starts without a swarm key and without loading libp2p, gRPC or the P2P agent module (an ES module
 * resolve hook records every module it loads), forwards a rewritten name to the host its hosts.toml lists
 * (a server on loopback that records what it is asked), and refuses a bad rule at start with exit 2.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { freePort } from '../helpers/net.js';
import { afterAll, describe, expect, it } from 'vitest';
import { LO_BIN, REPO_ROOT } from '../helpers/docker.js';

const dir = mkdtempSync(join(tmpdir(), 'lo-fwd-cli-'));
const servers: http.Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('lo p2p agent --forward-only (built CLI)', () => {
  it('forwards a rewritten name, with no swarm key and without loading libp2p, gRPC or agent.js; SIGTERM stops it', async () => {
    const manifest = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}');
    const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
    const seen: string[] = [];
    const upstream = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.url !== '/v2/mirror/team/app/manifests/1.0') {
        res.writeHead(404);
        return res.end();
      }
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.manifest.v1+json',
        'docker-content-digest': digest,
        'content-length': manifest.length,
      });
      res.end(manifest);
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    servers.push(upstream);
    const [port, metricsPort] = [await freePort(), await freePort()];
    const hostsDir = join(dir, 'certs.d');
    mkdirSync(join(hostsDir, 'docker.io'), { recursive: true });
    writeFileSync(
      join(hostsDir, 'docker.io', 'hosts.toml'),
      `server = "https://registry-1.docker.io"\n[host."http://127.0.0.1:${port}"]\n[host."http://127.0.0.1:${(upstream.address() as AddressInfo).port}"]\n`,
    );
    const hooks = join(dir, 'hooks.mjs');
    writeFileSync(
      hooks,
      "import { appendFileSync } from 'node:fs';\nexport async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(process.env.LO_TEST_MODULES, r.url + '\\n'); return r; }\n",
    );
    writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${hooks}`)});\n`);
    const modules = join(dir, 'modules.txt');
    writeFileSync(modules, '');
    const child = execa(
      'node',
      [
        '--import',
        `file://${join(dir, 'register.mjs')}`,
        LO_BIN,
        'p2p',
        'agent',
        '--forward-only',
        '--port',
        String(port),
        '--metrics-port',
        String(metricsPort),
        '--public-host',
        '127.0.0.1',
        '--key',
        join(dir, 'no-such-swarm.key'),
        '--hosts-dir',
        hostsDir,
        '--rewrites',
        JSON.stringify({ 'docker.io': [['^team/(.*)$', 'mirror/team/${1}']] }),
      ],
      { cwd: REPO_ROOT, env: { ...process.env, LO_TEST_MODULES: modules }, reject: false, timeout: 60_000 },
    );
    let err = '';
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    for (let i = 0; i < 100 && !/forward only/.test(err); i++) await new Promise((r) => setTimeout(r, 100));
    expect(err).toMatch(/lo p2p agent \(forward only\): registry on http:\/\/127\.0\.0\.1:\d+/);

    const res = await fetch(`http://127.0.0.1:${port}/v2/team/app/manifests/1.0?ns=docker.io`);
    expect([res.status, res.headers.get('docker-content-digest')]).toEqual([200, digest]);
    expect(Buffer.from(await res.arrayBuffer()).equals(manifest)).toBe(true);
    expect((await fetch(`http://127.0.0.1:${port}/v2/library/alpine/manifests/3?ns=docker.io`)).status).toBe(404);
    expect(seen).toEqual(['GET /v2/mirror/team/app/manifests/1.0']);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/lo_p2p_forwards_total\{registry="docker.io",result="ok"\} 1/);
    expect(err).toMatch(/forward GET docker\.io team\/app -> mirror\/team\/app manifests\/1\.0 via http:\/\/127\.0\.0\.1:\d+: 200/);

    child.kill('SIGTERM');
    const r = await child;
    expect(r.exitCode).toBe(0);
    const loaded = readFileSync(modules, 'utf8');
    // the hook saw the CLI's own ES modules load (the check could fail) ...
    expect(loaded).toContain('/bin/lo.js');
    // ... and none of the P2P side
    expect(loaded).not.toMatch(/libp2p|@grpc|@chainsafe|dist\/agent\/agent\.js|containerdSource/);
  });

  it('a bad rule is a start error naming it (exit 2), before anything listens', async () => {
    const r = await execa(
      'node',
      [LO_BIN, 'p2p', 'agent', '--forward-only', '--port', '0', '--rewrites', '{"docker.io":[["^a/(.*)","b/$1x"]]}'],
      {
        cwd: REPO_ROOT,
        reject: false,
        timeout: 30_000,
      },
    );
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/docker\.io\[0\].*group "1x"/);
    expect(r.stderr).toContain('${1}');
  });
});
