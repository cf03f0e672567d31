/**
 * Private registries end to end (issue 14): real registry:2 upstreams of the test's own, real containerd node
 * (kind stand-in), every pull through containerd's CRI ImageService.
 *
 * - corp: registry:2 with TLS from the test's own CA and token auth, the token service (in this process, on
 *   the test network's gateway) checks alice's password. lo runs a mirror of it with `tls.caFile` and
 *   credentials (usernameEnv + tokenEnv). registry:2 (distribution 2.8) authenticates to an upstream only
 *   through a token service: against plain htpasswd (Basic) it sends no credentials, so the Basic upstream
 *   below is reached through an endpoint instead (docs/registries.md#private-registries).
 * - art: registry:2 with TLS and htpasswd auth whose repositories live under `docker-remote/`: an endpoint
 *   `https://…/v2/docker-remote` (override_path) with `Authorization` from $ART_AUTH.
 * - secure: registry:2 requiring a client certificate (`http.tls.clientcas`): an endpoint with certFile/keyFile.
 * - wild: a plain registry:2 as the `"*"` endpoint, for a registry name with no entry of its own.
 * Secrets never appear in lo's output, the plan, labels or container environments.
 * Subnets from 10.160.0.0/16, names `lopv…`.
 */
import { createHash, createSign, randomBytes, randomInt } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { execa, execaSync } from 'execa';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pollUntil } from '../support/poll.mjs';
import { criPull } from '../helpers/cri.js';
import { docker, TEST_RUN_LABEL, waitHttp } from '../helpers/docker.js';
import { cleanupProvisionRun, lo, makeTinyImage, provisionWorkspace, readInNode, type ProvisionWorkspace } from '../helpers/kind.js';

const ALICE = { user: 'alice', password: `corp-${randomBytes(6).toString('hex')}` };
const BOB = { user: 'bob', password: `art-${randomBytes(6).toString('hex')}` };
const ART_AUTH = `Basic ${Buffer.from(`${BOB.user}:${BOB.password}`).toString('base64')}`;
const SERVICE = 'corp-registry';
const ISSUER = 'lo-test-token-issuer';

let ws: ProvisionWorkspace;
let name: string;
let net: string;
let prefix: string;
let pki: string;
let file: string;
let tokenServer: Server | undefined;
const logins: Array<{ from: string; user: string | null; ok: boolean; scope: string }> = [];
const ip = (host: number): string => `${prefix}.${host}`;
const CORP = 120;
const ART = 121;
const SECURE = 122;
const WILD = 123;
let images: { corp: string; art: string; secure: string; wild: string };
let provisioned: { code: number; stdout: string; stderr: string };

function openssl(args: string[]): void {
  execaSync('openssl', args, { cwd: pki, stdio: 'pipe' });
}

/** A self-signed certificate (a CA, or the token signer): `<name>.key`, `<name>.pem`. */
function selfSigned(name: string, cn: string): void {
  openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-subj',
    `/CN=${cn}`,
  ]);
}

/** A certificate signed by the test CA with the extensions given: `<name>-key.pem` (server: `.key`), `<name>.pem`. */
function signed(name: string, key: string, cn: string, ext: string): void {
  writeFileSync(join(pki, `${name}.ext`), ext);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
  openssl([
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  ]);
}

/** The test's own PKI: a CA, one server certificate for the upstreams' addresses, a client certificate, the token signer. */
function makePki(): void {
  mkdirSync(pki, { recursive: true });
  selfSigned('ca', 'lo test private CA');
  const sans = [CORP, ART, SECURE].map((h) => `IP:${ip(h)}`).join(',');
  signed('server', 'server.key', 'corp upstreams', `subjectAltName=${sans}\nextendedKeyUsage=serverAuth\n`);
  signed('client', 'client-key.pem', 'lo test node', 'extendedKeyUsage=clientAuth\n');
  selfSigned('token', 'lo test token signer');
  writeFileSync(join(pki, 'htpasswd'), `${BOB.user}:${bcrypt.hashSync(BOB.password, 5)}\n`);
  // skopeo's cert dirs: *.crt are CAs, *.cert/*.key a client certificate.
  for (const d of ['push-ca', 'push-client']) mkdirSync(join(pki, d));
  writeFileSync(join(pki, 'push-ca', 'ca.crt'), readFileSync(join(pki, 'ca.pem')));
  writeFileSync(join(pki, 'push-client', 'ca.crt'), readFileSync(join(pki, 'ca.pem')));
  writeFileSync(join(pki, 'push-client', 'client.cert'), readFileSync(join(pki, 'client.pem')));
  writeFileSync(join(pki, 'push-client', 'client.key'), readFileSync(join(pki, 'client-key.pem')));
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** A registry token (distribution's token auth: RS256 JWT, the signer's certificate in x5c). */
function token(sub: string, scope: string): string {
  const der = readFileSync(join(pki, 'token.pem'), 'utf8').replace(/-----[^-]+-----|\s/g, '');
  const now = Math.floor(Date.now() / 1000);
  const access = scope
    .split(' ')
    .filter(Boolean)
    .map((s) => {
      const [type, repo, actions] = s.split(':');
      return { type, name: repo, actions: (actions ?? '').split(',') };
    });
  const head = b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [der] }));
  const body = b64url(
    JSON.stringify({
      iss: ISSUER,
      sub,
      aud: SERVICE,
      exp: now + 600,
      nbf: now - 60,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access,
    }),
  );
  const sig = createSign('RSA-SHA256')
    .update(`${head}.${body}`)
    .sign(readFileSync(join(pki, 'token.key'), 'utf8'));
  return `${head}.${body}.${b64url(sig)}`;
}

/** The token service: alice with her password gets a token for the scope asked; anyone else a 401. */
async function startTokenServer(address: string): Promise<number> {
  tokenServer = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const [user, password] = basic ? Buffer.from(basic, 'base64').toString().split(/:(.*)/s) : [null, null];
    const ok = user === ALICE.user && password === ALICE.password;
    const scope = url.searchParams.getAll('scope').join(' ');
    logins.push({ from: req.socket.remoteAddress ?? '', user: user ?? null, ok, scope });
    if (!ok) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    const t = token(user!, scope);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: t, access_token: t, expires_in: 600 }));
  });
  await new Promise<void>((resolve) => tokenServer!.listen(0, address, resolve));
  return (tokenServer.address() as { port: number }).port;
}

/** A registry:2 of the test's own on the shared network, with the config given (TLS material mounted at /pki). */
async function startRegistry(role: string, host: number, config: Record<string, unknown>): Promise<string> {
  const dir = join(pki, `cfg-${role}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'config.yml'),
    stringify({
      version: 0.1,
      log: { level: 'info' },
      storage: { filesystem: { rootdirectory: '/var/lib/registry' }, delete: { enabled: true } },
      ...config,
    }),
  );
  const container = `${ws.runId}-${role}`;
  const c = await docker.createContainer({
    name: container,
    Image: 'registry:2',
    Cmd: ['/etc/cfg/config.yml'],
    Labels: { [TEST_RUN_LABEL]: ws.runId },
    HostConfig: {
      NetworkMode: net,
      Binds: [`${dir}:/etc/cfg:ro`, `${pki}:/pki:ro`],
    },
    NetworkingConfig: { EndpointsConfig: { [net]: { IPAMConfig: { IPv4Address: ip(host) } } } },
  });
  await c.start();
  return container;
}

const tlsOf = (extra: Record<string, unknown> = {}) => ({ certificate: '/pki/server.pem', key: '/pki/server.key', ...extra });

async function logsOf(container: string): Promise<string> {
  const r = await execa('docker', ['logs', container], { all: true, reject: false });
  return String(r.all ?? '');
}

async function skopeoCopy(image: string, dest: string, args: string[]): Promise<void> {
  await execa('skopeo', ['copy', '--quiet', ...args, `docker-daemon:${image}`, `docker://${dest}`], { timeout: 60_000 });
}

beforeAll(async () => {
  ws = provisionWorkspace();
  const hex = ws.runId.slice('lopv-'.length);
  name = `lopvq${hex}`;
  net = `lopvr${hex}`;
  const octet = 200 + randomInt(50);
  prefix = `10.160.${octet}`;
  pki = join(ws.dir, 'pki');
  makePki();
  await docker.createNetwork({
    Name: net,
    Labels: { [TEST_RUN_LABEL]: ws.runId },
    IPAM: { Config: [{ Subnet: `${prefix}.0/24`, Gateway: ip(1), IPRange: `${prefix}.128/25` }] },
  });
  const port = await startTokenServer(ip(1));
  await startRegistry('corp', CORP, {
    http: { addr: ':5000', tls: tlsOf() },
    auth: { token: { realm: `http://${ip(1)}:${port}/token`, service: SERVICE, issuer: ISSUER, rootcertbundle: '/pki/token.pem' } },
  });
  await startRegistry('art', ART, { http: { addr: ':5000', tls: tlsOf() }, auth: { htpasswd: { realm: 'art', path: '/pki/htpasswd' } } });
  await startRegistry('secure', SECURE, { http: { addr: ':5000', tls: tlsOf({ clientcas: ['/pki/ca.pem'] }) } });
  await startRegistry('wild', WILD, { http: { addr: ':5000' } });
  await waitHttp(`http://${ip(WILD)}:5000/v2/`);
  // The upstreams with TLS answer once their port is open (401 or a TLS error from curl without a client cert).
  for (const h of [CORP, ART, SECURE]) {
    await pollUntil(
      () =>
        execa('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', join(pki, 'ca.pem'), `https://${ip(h)}:5000/v2/`], {
          reject: false,
        }),
      (r) => r.exitCode === 0 || r.exitCode === 56 || r.exitCode === 35,
      { timeoutMs: 20_000, everyMs: 200 },
    );
  }
  const seed = async (n: string): Promise<string> => makeTinyImage(ws, n);
  images = { corp: 'team/corp-img:v1', art: 'library/art-img:v1', secure: 'team/sec-img:v1', wild: 'library/wild-img:v1' };
  await skopeoCopy(await seed('corp'), `${ip(CORP)}:5000/${images.corp}`, [
    '--dest-cert-dir',
    join(pki, 'push-ca'),
    '--dest-creds',
    `${ALICE.user}:${ALICE.password}`,
  ]);
  await skopeoCopy(await seed('art'), `${ip(ART)}:5000/docker-remote/${images.art}`, [
    '--dest-cert-dir',
    join(pki, 'push-ca'),
    '--dest-creds',
    `${BOB.user}:${BOB.password}`,
  ]);
  await skopeoCopy(await seed('secure'), `${ip(SECURE)}:5000/${images.secure}`, ['--dest-cert-dir', join(pki, 'push-client')]);
  await skopeoCopy(await seed('wild'), `${ip(WILD)}:5000/${images.wild}`, ['--dest-tls-verify=false']);
  logins.length = 0;

  file = join(ws.dir, 'cluster.lok8s.yaml');
  writeFileSync(
    file,
    stringify({
      apiVersion: 'cluster.lok8s.dev/v1beta1',
      kind: 'Lo',
      metadata: { name },
      spec: {
        cluster: { domain: `${name}.test` },
        network: { name, cidr: `10.160.${10 + randomInt(90)}.0/24` },
        nodes: { controlPlane: 1, workers: 0 },
        registries: {
          shared: { enabled: true, network: { name: net, cidr: `${prefix}.0/24` } },
          mirrors: [
            {
              name: `${ws.runId}-corp`,
              url: `https://${ip(CORP)}:5000`,
              registry: 'harbor.corp.test',
              credentials: { usernameEnv: 'CORP_USER', tokenEnv: 'CORP_TOKEN' },
              tls: { caFile: './pki/ca.pem' },
            },
          ],
          hosts: {
            'art.corp.test': {
              endpoints: [
                {
                  url: `https://${ip(ART)}:5000/v2/docker-remote`,
                  tls: { caFile: './pki/ca.pem' },
                  headers: { Authorization: { env: 'ART_AUTH' } },
                },
              ],
              disableDefaultEndpoint: true,
            },
            'secure.corp.test': {
              endpoints: [
                {
                  url: `https://${ip(SECURE)}:5000`,
                  tls: { caFile: 'pki/ca.pem', certFile: 'pki/client.pem', keyFile: 'pki/client-key.pem' },
                },
              ],
              disableDefaultEndpoint: true,
            },
            '*': { endpoints: [{ url: `http://${ip(WILD)}:5000`, capabilities: ['pull', 'resolve'] }] },
          },
          p2p: { enabled: false },
        },
      },
    }),
  );
  ws.env.CORP_USER = ALICE.user;
  ws.env.CORP_TOKEN = ALICE.password;
  ws.env.ART_AUTH = ART_AUTH;
  provisioned = await lo(ws, ['--config', file, 'provision', '--json'], 300_000);
}, 400_000);

afterAll(async () => {
  await new Promise((resolve) => (tokenServer ? tokenServer.close(resolve) : resolve(undefined)));
  await cleanupProvisionRun(ws, name ? [name] : []);
});

const node = (): string => `${name}-control-plane`;
const esc = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
/** registry:2's line for a request its auth accepted (a verified token, or htpasswd), from `from`, for `uri`. */
const authorized = (from: string, uri: string): RegExp =>
  new RegExp(`msg="authorized request".*remoteaddr="?${esc(from)}:\\d+"? http\\.request\\.uri="?${esc(uri)}`);
/** registry:2's access-log line of a containerd manifest request (a HEAD by tag) answered 200. */
const accessed = (uri: string): RegExp => new RegExp(`"HEAD ${esc(uri)} HTTP/1\\.1" 200 .*"containerd/`);
const secrets = (): string[] => [ALICE.password, BOB.password, ART_AUTH, Buffer.from(`${BOB.user}:${BOB.password}`).toString('base64')];

describe('private registries (issue 14)', () => {
  it('provisions, and no secret appears in its output, the plan, any label or container environment', async () => {
    expect(provisioned.code, provisioned.stderr).toBe(0);
    const plan = await lo(ws, ['--config', file, 'plan', '--json']);
    const planText = await lo(ws, ['--config', file, 'plan', '--hosts']);
    expect(planText.stdout).toContain('Authorization = [ "<from $ART_AUTH>" ]');
    const mirror = await docker.getContainer(`lok8s-registry-${ws.runId}-corp`).inspect();
    const nodeInfo = await docker.getContainer(node()).inspect();
    const everything = [
      provisioned.stdout,
      provisioned.stderr,
      plan.stdout,
      planText.stdout,
      planText.stderr,
      JSON.stringify(mirror.Config),
      JSON.stringify(nodeInfo.Config),
    ].join('\n');
    for (const s of secrets()) expect(everything).not.toContain(s);
    // The secrets are in the two 0600 files that need them: the mirror's config and art.corp.test's hosts.toml.
    const p = JSON.parse(plan.stdout);
    const corp = p.registries.find((r: { name: string }) => r.name === `${ws.runId}-corp`);
    expect(statSync(corp.configPath).mode & 0o777).toBe(0o600);
    expect(readFileSync(corp.configPath, 'utf8')).toContain(ALICE.password);
    const art = p.containerd.hosts.find((h: { host: string }) => h.host === 'art.corp.test');
    expect(statSync(art.path).mode & 0o777).toBe(0o600);
    expect(readFileSync(art.path, 'utf8')).toContain(ART_AUTH);
    expect(statSync(join(p.containerd.certsDir, 'secure.corp.test', 'lo-0-client.key')).mode & 0o777).toBe(0o600);
    expect(mirror.Config.Env).toContain('SSL_CERT_DIR=/etc/lo/registry/upstream-ca');
  });

  it('a mirror of a TLS + token-auth upstream pulls with the test CA and the credentials (route in the mirror and upstream logs)', async () => {
    const pulled = await criPull(node(), `harbor.corp.test/${images.corp}`);
    expect(pulled.code, pulled.out).toBe(0);
    const mirrorLog = await logsOf(`lok8s-registry-${ws.runId}-corp`);
    // The proxy met the upstream's bearer challenge and fetched the manifest through it.
    expect(mirrorLog).toMatch(/Challenge established with upstream : \{https\s+10\.160\.\d+\.120:5000 \/v2\//);
    expect(mirrorLog).toMatch(/bearer/);
    expect(mirrorLog).toMatch(accessed(`/v2/${images.corp.replace(':v1', '')}/manifests/v1?ns=harbor.corp.test`));
    const mirrorIp = (await docker.getContainer(`lok8s-registry-${ws.runId}-corp`).inspect()).NetworkSettings.Networks[net]!.IPAddress;
    // The token service saw alice log in from the mirror, with the right password, for the repository.
    expect(logins.filter((l) => l.ok && l.from.endsWith(mirrorIp) && l.scope.includes('team/corp-img:pull')).length).toBeGreaterThan(0);
    expect(logins.filter((l) => !l.ok && l.user !== null)).toEqual([]);
    const upstreamLog = await logsOf(`${ws.runId}-corp`);
    expect(upstreamLog).toMatch(authorized(mirrorIp, `/v2/${images.corp.replace(':v1', '')}/manifests/v1`));
  });

  it('an endpoint with a path prefix and an Authorization header from the environment pulls from docker-remote/ (htpasswd upstream)', async () => {
    const hostsToml = await readInNode(node(), '/etc/containerd/certs.d/art.corp.test/hosts.toml');
    expect(hostsToml).toContain('override_path = true');
    const pulled = await criPull(node(), `art.corp.test/${images.art}`);
    expect(pulled.code, pulled.out).toBe(0);
    const log = await logsOf(`${ws.runId}-art`);
    const nodeIp = (await docker.getContainer(node()).inspect()).NetworkSettings.Networks[net]!.IPAddress;
    // The node's containerd asked under the prefix, and htpasswd accepted bob's header.
    expect(log).toMatch(authorized(nodeIp, `/v2/docker-remote/${images.art.replace(':v1', '')}/manifests/v1?ns=art.corp.test`));
  });

  it('an endpoint that requires a client certificate is reached with the one the spec names', async () => {
    // Without a client certificate the registry refuses the TLS handshake.
    const bare = await execa('curl', ['-s', '--cacert', join(pki, 'ca.pem'), `https://${ip(SECURE)}:5000/v2/`], { reject: false });
    expect(bare.exitCode).not.toBe(0);
    const pulled = await criPull(node(), `secure.corp.test/${images.secure}`);
    expect(pulled.code, pulled.out).toBe(0);
    expect(await logsOf(`${ws.runId}-secure`)).toMatch(
      accessed(`/v2/${images.secure.replace(':v1', '')}/manifests/v1?ns=secure.corp.test`),
    );
  });

  it('a registry with no entry of its own uses the "*" default (certs.d/_default)', async () => {
    const hostsToml = await readInNode(node(), '/etc/containerd/certs.d/_default/hosts.toml');
    expect(hostsToml).toContain(`[host."http://${ip(WILD)}:5000"]`);
    const pulled = await criPull(node(), `wild.corp.test/${images.wild}`);
    expect(pulled.code, pulled.out).toBe(0);
    expect(await logsOf(`${ws.runId}-wild`)).toMatch(accessed(`/v2/${images.wild.replace(':v1', '')}/manifests/v1?ns=wild.corp.test`));
  });

  it('lo doctor asks each endpoint with its CA, client certificate and header, and says why one fails (registry:2 on TLS)', async () => {
    type EndpointCheck = {
      name: string;
      status: string;
      detail: string;
      fix?: string;
      endpoint?: { httpStatus?: number; problem?: string };
    };
    const endpointsOf = (out: string): EndpointCheck[] =>
      (JSON.parse(out) as { checks: EndpointCheck[] }).checks.filter((c) => c.endpoint !== undefined);
    const shown = (cs: EndpointCheck[]) => cs.map((c) => [c.name, c.status, c.endpoint!.httpStatus ?? c.endpoint!.problem]);
    const r = await lo(ws, ['--config', file, 'doctor', '--json']);
    // art: the prefix root of registry:2 is 404 over verified TLS; secure: 200 with the client certificate; "*": 200.
    expect(shown(endpointsOf(r.stdout)), r.stdout).toEqual([
      ['endpoint art.corp.test #1', 'ok', 404],
      ['endpoint secure.corp.test #1', 'ok', 200],
      ['endpoint * #1', 'ok', 200],
    ]);
    for (const s of secrets()) expect(r.stdout + r.stderr).not.toContain(s);
    // The same project without the client certificate, and without $ART_AUTH: Go's TLS server asks for the
    // certificate; the header is not sent at all.
    const bare = join(ws.dir, 'doctor-bare.lok8s.yaml');
    writeFileSync(
      bare,
      readFileSync(file, 'utf8')
        .replace(/\n\s*certFile: pki\/client\.pem/, '')
        .replace(/\n\s*keyFile: pki\/client-key\.pem/, ''),
    );
    const { ART_AUTH: _, ...noAuth } = ws.env;
    const b = await lo({ ...ws, env: noAuth }, ['--config', bare, 'doctor', '--json']);
    const checks = endpointsOf(b.stdout);
    expect(shown(checks), b.stdout).toEqual([
      ['endpoint art.corp.test #1', 'fail', 'not-sent'],
      ['endpoint secure.corp.test #1', 'fail', 'client-certificate-required'],
      ['endpoint * #1', 'ok', 200],
    ]);
    expect(checks[0]!.fix).toContain('export ART_AUTH=...');
    expect(checks[1]!.fix).toContain('spec.registries.hosts["secure.corp.test"].endpoints[0].tls.certFile and keyFile');
    // Go's crypto/tls answers a missing client certificate with the bad_certificate alert.
    expect(checks[1]!.detail).toContain('TLS: sslv3 alert bad certificate (alert 42) (ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE)');
  });

  it('the shared mirror carries the digest of its upstream CA, not its path', async () => {
    const labels = (await docker.getContainer(`lok8s-registry-${ws.runId}-corp`).inspect()).Config.Labels;
    const digest = createHash('sha256')
      .update(readFileSync(join(pki, 'ca.pem'), 'utf8'))
      .digest('hex');
    expect(labels['dev.lok8s.lo.upstream-access']).toBe(`ca=sha256:${digest}`);
    expect(JSON.stringify(labels)).not.toContain('pki/');
  });

  it('a second provision changes nothing; its debug log and the mirror and node logs hold no secret', async () => {
    const again = await lo(ws, ['--config', file, '--verbose', 'provision', '--json'], 300_000);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/^\[lo\] /m);
    const logs = [again.stdout, again.stderr, await logsOf(`lok8s-registry-${ws.runId}-corp`), await logsOf(node())].join('\n');
    for (const s of secrets()) expect(logs).not.toContain(s);
    const result = JSON.parse(again.stdout) as { steps: Array<{ actions?: Array<{ action: string; name: string }> }> };
    const changed = result.steps.flatMap((s) => s.actions ?? []).filter((a) => a.action !== 'noop');
    expect(changed).toEqual([]);
  });
});
