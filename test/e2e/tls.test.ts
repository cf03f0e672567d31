/**
 * TLS on a real engine: a registry:2 container serving lo's leaf is reached over HTTPS with only lo's CA,
 * and `lo trust --yes` on this Debian host makes `docker push` to a TLS registry on a Docker network work
 * without insecure-registries. Everything created carries the run-id label and is removed afterwards; the
 * system trust store and /etc/docker/certs.d are put back as they were.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { basename, join } from 'node:path';
import Docker from 'dockerode';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { renderRegistryConfig, REGISTRY_CONFIG_DIR, REGISTRY_TLS_DIR } from '../../src/plan/render/renderRegistryConfig.js';
import { loadCa } from '../../src/apply/tls/ca.js';
import { issueLeaf } from '../../src/apply/tls/leaf.js';
import { ensureTls, type TlsMaterial } from '../../src/apply/tls/ensureTls.js';
import { checkTrust, dockerTrustHosts } from '../../src/adapters/trust/check.js';
import { defaultTrustEnv, trustFileName } from '../../src/adapters/trust/stores.js';
import { httpsGet, specYaml, tempDir, tlsPlan, type TlsSpecInput } from '../helpers/tls.js';
import { RUN_LABEL, removeRunObjects } from '../support/dockerRun.mjs';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const runId = `lotls-${randomBytes(3).toString('hex')}`;
// A /24 of our block that no other run of this file uses at the same time.
const third = 30 + (randomBytes(1)[0]! % 200);
const SPEC: TlsSpecInput = {
  name: runId, // 12 chars: also the bridge name
  cidr: `10.150.${third}.0/24`,
  sharedName: `${runId}s`,
  sharedCidr: `10.150.${third === 229 ? 230 : third + 1}.0/24`,
  mirrors: [],
};
const DOCKER_CERTS = '/etc/docker/certs.d';

/** curl GET, 5 s at most, the body dropped: stdout is the HTTP status; never throws (the exit code tells TLS failures). */
const curl = (args: string[]): Promise<{ stdout: string; stderr: string; exitCode?: number }> =>
  execa('curl', ['-sS', '--max-time', '5', '-o', '/dev/null', '-w', '%{http_code}', ...args], { reject: false });

describe.sequential('TLS on a real registry:2 and lo trust on this host', () => {
  const t = tempDir();
  const plan = tlsPlan(t.dir, SPEC, { [RUN_LABEL]: runId });
  const build = plan.registries.find((r) => r.role === 'build')!;
  const specFile = join(t.dir, 'cluster.lok8s.yaml');
  let material: TlsMaterial;
  let caPem = '';
  let ca: Awaited<ReturnType<typeof loadCa>> = null;
  // What this test adds to the host, to put the host back as it was.
  const restore: Array<() => Promise<void> | void> = [];
  const saved = { CAROOT: process.env.CAROOT, LO_STATE_DIR: process.env.LO_STATE_DIR };

  beforeAll(async () => {
    await docker.ping();
    writeFileSync(specFile, specYaml(SPEC));
    process.env.CAROOT = plan.tls.caRoot;
    process.env.LO_STATE_DIR = plan.paths.stateDir;
    material = (await ensureTls(plan))!;
    caPem = material.caCertPem;
    // The registry configuration, rendered by lo's renderer, kept in lo's state dir and mounted read-only.
    const config = renderRegistryConfig({ port: 443, tls: { certFile: 'registry.crt', keyFile: 'registry.key' } });
    expect(config).toBe(build.config);
    mkdirSync(build.configDir, { recursive: true });
    writeFileSync(build.configPath, config);
    const net = plan.networks.find((n) => n.role === 'project')!;
    await docker.createNetwork({
      Name: net.name,
      Driver: 'bridge',
      CheckDuplicate: true,
      Labels: net.labels,
      Options: { 'com.docker.network.bridge.name': net.bridgeName },
      IPAM: { Driver: 'default', Config: [{ Subnet: net.subnet, Gateway: net.gateway, IPRange: net.ipRange }] },
    });
    const c = await docker.createContainer({
      name: build.containerName,
      Image: build.image,
      Cmd: [`${REGISTRY_CONFIG_DIR}/config.yml`],
      Labels: build.labels,
      HostConfig: { Binds: [`${build.configDir}:${REGISTRY_CONFIG_DIR}:ro`, `${build.tlsDir}:${REGISTRY_TLS_DIR}:ro`] },
      NetworkingConfig: { EndpointsConfig: { [net.name]: { IPAMConfig: { IPv4Address: build.ip } } } },
    });
    await c.start();
    // Bounded wait for the registry to listen (30 x 200 ms).
    for (let i = 0; i < 30; i++) {
      const ok = await httpsGet(`https://${build.ip}/v2/`, { ca: caPem, timeoutMs: 1000 }).then(
        () => true,
        () => false,
      );
      if (ok) break;
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 120_000);

  afterAll(async () => {
    for (const f of restore.reverse()) await Promise.resolve(f()).catch((e: unknown) => console.error('restore failed:', e));
    await removeRunObjects(docker, runId);
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    t.cleanup();
  }, 120_000);

  it('Node reaches the registry over HTTPS with only the CA (by IP and by lok8s.local / lok8s.cache)', async () => {
    expect((await httpsGet(`https://${build.ip}/v2/`, { ca: caPem })).status).toBe(200);
    expect((await httpsGet('https://lok8s.local/v2/', { ca: caPem, resolveTo: build.ip })).status).toBe(200);
    expect((await httpsGet('https://lok8s.cache/v2/', { ca: caPem, resolveTo: build.ip })).status).toBe(200);
    // without lo's CA the same request fails verification; a name outside the SANs fails too
    await expect(httpsGet(`https://${build.ip}/v2/`, {})).rejects.toMatchObject({
      code: expect.stringMatching(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/),
    });
    await expect(httpsGet('https://not-in-the-cert.example/v2/', { ca: caPem, resolveTo: build.ip })).rejects.toMatchObject({
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
  });

  it('certificates name only lo: a client asking for quay.io is refused, and a forged quay.io leaf fails the chain', async () => {
    // The registry's leaf has only lo's names: Node refuses it for quay.io (connecting to the registry's IP).
    await expect(httpsGet('https://quay.io/v2/', { ca: caPem, resolveTo: build.ip })).rejects.toMatchObject({
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
    const san = (await execa('openssl', ['x509', '-in', plan.tls.certificates[0]!.certPath, '-noout', '-ext', 'subjectAltName'])).stdout;
    const sans = san.split('\n')[1]!.trim().split(', ').sort();
    expect(sans).toEqual([
      'DNS:lok8s.cache',
      'DNS:lok8s.local',
      `IP Address:${build.ip}`,
      `IP Address:${plan.registries.find((r) => r.role === 'cache')!.ip}`,
    ]);
    const nc = (await execa('openssl', ['x509', '-in', plan.tls.caCertPath, '-noout', '-ext', 'nameConstraints'])).stdout;
    expect(nc).toMatch(/Name Constraints: critical/);
    // Even the CA's key cannot make quay.io believable: a leaf forged with that SAN breaks the name constraints.
    const theCa = (await loadCa({ caRoot: plan.tls.caRoot, certPath: plan.tls.caCertPath, keyPath: plan.tls.caKeyPath }))!;
    const forged = await issueLeaf({ id: 'forged', certPath: '', keyPath: '', names: ['quay.io', '127.0.0.1'] }, theCa, new Date());
    const forgedPath = join(t.dir, 'forged.crt');
    writeFileSync(forgedPath, forged.certPem);
    const v = await execa('openssl', ['verify', '-CAfile', plan.tls.caCertPath, forgedPath], { reject: false, all: true });
    expect(v.exitCode).not.toBe(0);
    expect(v.all).toMatch(/permitted subtree violation/);
    // Served by a real TLS server, Node and curl both refuse the forged quay.io leaf on name constraints.
    const server = createHttpsServer({ cert: forged.certPem, key: forged.keyPem }, (_req, res) => res.end('forged'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      await expect(httpsGet(`https://quay.io:${port}/v2/`, { ca: caPem, resolveTo: '127.0.0.1' })).rejects.toMatchObject({
        message: 'permitted subtree violation',
      });
      const c = await curl(['--cacert', plan.tls.caCertPath, '--resolve', `quay.io:${port}:127.0.0.1`, `https://quay.io:${port}/v2/`]);
      expect(c.exitCode).toBe(60);
    } finally {
      server.close();
    }
  });

  it('curl --cacert verifies it (no -k), and fails without the CA', async () => {
    const caFile = plan.tls.caCertPath;
    expect((await curl(['--cacert', caFile, `https://${build.ip}/v2/`])).stdout).toBe('200');
    const byName = await curl(['--cacert', caFile, '--resolve', `lok8s.local:443:${build.ip}`, 'https://lok8s.local/v2/']);
    expect(byName.stdout).toBe('200');
    const bad = await curl([`https://${build.ip}/v2/`]);
    expect(bad.exitCode).toBe(60); // peer certificate cannot be authenticated with known CA certificates
  });

  it('lo trust --yes makes docker push to the TLS registry work without insecure-registries', async () => {
    const info = await docker.info();
    const insecure = (info.RegistryConfig?.IndexConfigs?.[build.ip] as { Secure?: boolean } | undefined)?.Secure;
    expect(insecure).not.toBe(false);
    expect(JSON.stringify(info.RegistryConfig?.InsecureRegistryCIDRs ?? [])).not.toContain('10.150.');

    // A tiny image, labelled with the run id.
    const ref = `${build.ip}/${runId}/tiny:1`;
    const ctx = join(t.dir, 'img');
    mkdirSync(ctx, { recursive: true });
    writeFileSync(join(ctx, 'hello.txt'), `hello from ${runId}\n`);
    await execa('sh', ['-c', `tar -C ${ctx} -c . | docker import --change 'LABEL ${RUN_LABEL}=${runId}' - ${ref}`]);

    // Before trust: Docker refuses the registry's certificate.
    const before = await execa('docker', ['push', ref], { reject: false, all: true });
    expect(before.exitCode).not.toBe(0);
    expect(before.all).toMatch(/x509|certificate/i);

    // Record the host's state so the test leaves it as it was.
    const env = await defaultTrustEnv({ env: process.env });
    expect(env.systemStore).toMatchObject({ kind: 'anchors', name: 'debian', anchorDir: '/usr/local/share/ca-certificates' });
    ca = (await loadCa({ caRoot: plan.tls.caRoot, certPath: plan.tls.caCertPath, keyPath: plan.tls.caKeyPath }))!;
    const anchor = join('/usr/local/share/ca-certificates', trustFileName(ca, '.crt'));
    const certsDirExisted = existsSync(DOCKER_CERTS);
    restore.push(async () => {
      rmSync(anchor, { force: true });
      await execa('update-ca-certificates');
      // update-ca-certificates rebuilds the bundle but leaves the links it made for a removed file when
      // nothing else changed; remove exactly ours (<name>.pem and the hash link to it).
      const pemLink = basename(anchor, '.crt') + '.pem';
      for (const f of readdirSync('/etc/ssl/certs')) {
        const p = join('/etc/ssl/certs', f);
        const target = lstatSync(p).isSymbolicLink() ? readlinkSync(p) : null;
        if (f === pemLink || target === anchor || target === pemLink) rmSync(p, { force: true });
      }
    });
    for (const h of dockerTrustHosts(plan)) {
      const dir = join(DOCKER_CERTS, h);
      const file = join(dir, 'ca.crt');
      const prev = existsSync(file) ? readFileSync(file) : null;
      const dirExisted = existsSync(dir);
      restore.push(() => {
        if (prev) writeFileSync(file, prev);
        else if (!dirExisted) rmSync(dir, { recursive: true, force: true });
        else rmSync(file, { force: true });
      });
    }
    if (!certsDirExisted) restore.push(() => rmSync(DOCKER_CERTS, { recursive: true, force: true }));

    // `lo --config <spec> trust --yes`, the real command with the host's real stores.
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    let code: number;
    try {
      code = await main(['node', 'lo', '--config', specFile, 'trust', '--yes']);
    } finally {
      vi.restoreAllMocks();
    }
    expect(code, out.join('')).toBe(0);
    expect(out.join('')).toContain(`write ${anchor}, then run update-ca-certificates`);
    expect(out.join('')).toContain(`write ${join(DOCKER_CERTS, build.ip, 'ca.crt')}`);
    expect(readFileSync(join(DOCKER_CERTS, build.ip, 'ca.crt'), 'utf8')).toBe(caPem);
    expect(readFileSync('/etc/ssl/certs/ca-certificates.crt', 'utf8')).toContain(caPem.trim().split('\n')[1]);

    // After trust: docker push verifies TLS and succeeds; the registry lists the repository.
    const pushed = await execa('docker', ['push', ref], { reject: false, all: true });
    expect(pushed.exitCode, pushed.all).toBe(0);
    const catalog = await httpsGet(`https://${build.ip}/v2/_catalog`, { ca: caPem });
    expect(JSON.parse(catalog.body).repositories).toContain(`${runId}/tiny`);
    // The system store now verifies it too: curl without --cacert.
    const sys = await curl([`https://${build.ip}/v2/`]);
    expect(sys.stdout, sys.stderr).toBe('200');

    // Re-runnable: --check reports everything trusted (exit 0); a second `trust --yes` changes nothing.
    const report = await checkTrust(plan, { processEnv: process.env });
    expect(report.trusted).toBe(true);
    expect(report.items.map((i) => i.state)).toEqual(report.items.map(() => 'trusted'));
    vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    try {
      expect(await main(['node', 'lo', '--config', specFile, 'trust', '--check'])).toBe(0);
      out.length = 0;
      expect(await main(['node', 'lo', '--config', specFile, 'trust', '--yes'])).toBe(0);
      expect(out.join('')).toMatch(/already trusted/);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('lo trust --uninstall --yes puts the host back: the CA is gone from the system bundle and certs.d', async () => {
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    let code: number;
    try {
      code = await main(['node', 'lo', '--config', specFile, 'trust', '--uninstall', '--yes']);
    } finally {
      vi.restoreAllMocks();
    }
    expect(code, out.join('')).toBe(0);
    expect(out.join('')).toMatch(/update-ca-certificates --fresh/);
    expect(out.join('')).toContain(`removed docker:${build.ip}`);
    // lo's own removal did it (checked before the safety net below runs)
    expect(readFileSync('/etc/ssl/certs/ca-certificates.crt', 'utf8')).not.toContain(caPem.trim().split('\n')[1]);
    expect(existsSync(join(DOCKER_CERTS, build.ip))).toBe(false);
    expect(readdirSync('/etc/ssl/certs').filter((f) => f.startsWith(trustFileName({ cert: ca!.cert }, '')))).toEqual([]);
    expect((await checkTrust(plan, { processEnv: process.env })).items.every((i) => i.state !== 'trusted')).toBe(true);
    // The safety net (also in afterAll) finds nothing left to undo; run it now and check the host is as before.
    for (const f of restore.splice(0).reverse()) await f();
    const bundle = readFileSync('/etc/ssl/certs/ca-certificates.crt', 'utf8');
    expect(bundle).not.toContain(caPem.trim().split('\n')[1]);
    const leftovers = readdirSync('/etc/ssl/certs').filter(
      (f) =>
        f.includes(trustFileName({ cert: ca!.cert }, '')) ||
        (lstatSync(join('/etc/ssl/certs', f)).isSymbolicLink() && !existsSync(join('/etc/ssl/certs', f))),
    );
    expect(leftovers).toEqual([]);
    for (const h of dockerTrustHosts(plan).filter((h) => /^\d/.test(h))) expect(existsSync(join(DOCKER_CERTS, h))).toBe(false);
    const report = await checkTrust(plan, { processEnv: process.env });
    expect(report.trusted).toBe(false);
  });
});
