import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyCertsDir, hostsFileContents } from '../../src/apply/certsDir.js';
import { registryConfigWithSecrets, TOKEN_USERNAME } from '../../src/apply/registryConfig.js';
import { LoError, PlanConflictError } from '../../src/errors/loError.js';
import { LABELS } from '../../src/plan/labels.js';
import { resolveHosts } from '../../src/plan/containerdHosts.js';
import { planCluster } from '../../src/plan/planCluster.js';
import type { ObservedShared, Plan } from '../../src/plan/types.js';
import { loadPlan } from '../../src/usecases/plan.js';
import { parseSpec } from '../../src/spec/parseSpec.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lo-private-unit-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const HEAD = `apiVersion: cluster.lok8s.dev/v1beta1
kind: Lo
metadata:
  name: priv
spec:
  network: { name: priv, cidr: 10.140.92.0/24 }
  cluster: { domain: priv.test }
`;
function plan(body: string): Plan {
  const spec = parseSpec(HEAD + body, { file: join(dir, 'spec', 'cluster.lok8s.yaml') });
  return planCluster(spec, { paths: { stateDir: join(dir, 'state'), caRoot: join(dir, 'ca') } });
}
const hostsFile = (p: Plan, host: string) => p.containerd.hosts.find((h) => h.host === host)!;
const toml = (p: Plan, host: string): Record<string, any> => parseToml(hostsFile(p, host).content) as Record<string, any>;

const PRIVATE = `  nodes: { workers: 1 }
  registries:
    mirrors:
      - { name: io-docker, url: "https://registry-1.docker.io" }
    hosts:
      docker.io:
        endpoints:
          - url: https://artifactory.corp.example/v2/docker-remote
            tls: { caFile: ./corp-ca.pem, certFile: ./client.pem, keyFile: ./client-key.pem }
            headers: { Authorization: { env: ART_AUTH } }
      harbor.corp.example:
        endpoints:
          - url: https://harbor-a.corp.example
            tls: { insecureSkipVerify: true }
          - url: https://harbor-b.corp.example
        disableDefaultEndpoint: true
      "*":
        endpoints: [ { url: "https://mirror.corp.example" } ]
`;

describe('hosts.toml for spec.registries.hosts (issue 14)', () => {
  it('a mirrored registry lists the P2P agent, cache, mirror and replica, then the endpoints, then the upstream', () => {
    const p = plan(PRIVATE);
    const t = toml(p, 'docker.io');
    expect(t.server).toBe('https://registry-1.docker.io');
    const urls = Object.keys(t.host);
    expect(urls[0]).toBe('http://127.0.0.1:30020');
    expect(urls.slice(1, 4)).toEqual([
      expect.stringMatching(/\/v2\/docker\.io$/),
      expect.stringMatching(/^https:\/\/10\.125\.200\.\d+$/),
      expect.stringMatching(/:5443$/),
    ]);
    expect(urls[4]).toBe('https://artifactory.corp.example/v2/docker-remote');
    const nodeDir = '/etc/containerd/certs.d/docker.io';
    expect(t.host['https://artifactory.corp.example/v2/docker-remote']).toEqual({
      capabilities: ['pull', 'resolve'],
      ca: `${nodeDir}/lo-0-ca.crt`,
      client: [[`${nodeDir}/lo-0-client.cert`, `${nodeDir}/lo-0-client.key`]],
      override_path: true,
      header: { Authorization: ['<from $ART_AUTH>'] },
    });
    // containerd resolves the prefix as written: /v2/docker-remote/<repo>/manifests/<tag>.
    const resolved = resolveHosts('docker.io', hostsFile(p, 'docker.io').content).find((h) => h.host === 'artifactory.corp.example')!;
    expect(resolved.path).toBe('/v2/docker-remote');
    expect(hostsFile(p, 'docker.io')).toMatchObject({ mode: 0o600, headerEnv: ['ART_AUTH'] });
    expect(p.containerd.files).toEqual([
      {
        source: join(dir, 'spec', 'corp-ca.pem'),
        path: `${p.containerd.certsDir}/docker.io/lo-0-ca.crt`,
        nodePath: `${nodeDir}/lo-0-ca.crt`,
        mode: 0o644,
      },
      {
        source: join(dir, 'spec', 'client.pem'),
        path: `${p.containerd.certsDir}/docker.io/lo-0-client.cert`,
        nodePath: `${nodeDir}/lo-0-client.cert`,
        mode: 0o644,
      },
      {
        source: join(dir, 'spec', 'client-key.pem'),
        path: `${p.containerd.certsDir}/docker.io/lo-0-client.key`,
        nodePath: `${nodeDir}/lo-0-client.key`,
        mode: 0o600,
      },
    ]);
    expect(p.files.filter((f) => f.path.includes('/docker.io/'))).toEqual([
      { path: `${p.containerd.certsDir}/docker.io/hosts.toml`, kind: 'hosts.toml', mode: 0o600 },
      expect.objectContaining({ kind: 'ca', mode: 0o644 }),
      expect.objectContaining({ kind: 'certificate', mode: 0o644 }),
      expect.objectContaining({ kind: 'key', mode: 0o600 }),
    ]);
  });

  it('a registry lo does not mirror: agent, cache, endpoints in order; a disabled default makes the last endpoint the server', () => {
    const p = plan(PRIVATE);
    const t = toml(p, 'harbor.corp.example');
    expect(Object.keys(t.host)).toEqual([
      'http://127.0.0.1:30020',
      expect.stringMatching(/^https:\/\/10\.140\.92\.102\/v2\/harbor\.corp\.example$/),
      'https://harbor-a.corp.example',
      'https://harbor-b.corp.example',
    ]);
    expect(t.host['https://harbor-a.corp.example']).toEqual({ capabilities: ['pull', 'resolve'], skip_verify: true });
    expect(t.server).toBe('https://harbor-b.corp.example');
    // containerd never reaches harbor.corp.example itself.
    expect(resolveHosts('harbor.corp.example', hostsFile(p, 'harbor.corp.example').content).map((h) => h.host)).not.toContain(
      'harbor.corp.example',
    );
    expect(hostsFile(p, 'harbor.corp.example').mode).toBe(0o644);
  });

  it('"*" is certs.d/_default: the P2P agent first, then its endpoints, then each registry\'s own default endpoint', () => {
    const p = plan(PRIVATE);
    const t = toml(p, '_default');
    expect(t.server).toBeUndefined();
    expect(Object.keys(t.host)).toEqual(['http://127.0.0.1:30020', 'https://mirror.corp.example']);
    expect(resolveHosts('example.org', hostsFile(p, '_default').content).map((h) => h.origin)).toEqual([
      'http://127.0.0.1:30020',
      'https://mirror.corp.example',
      'https://example.org',
    ]);
  });

  it('without P2P and without a mirror, an endpoints-only registry keeps its upstream as the server', () => {
    const p = plan(
      `  registries:\n    mirrors: []\n    hosts:\n      quay.io: { endpoints: [ { url: "https://q.corp.example", capabilities: [pull] } ] }\n`,
    );
    const t = toml(p, 'quay.io');
    expect(t.server).toBe('https://quay.io');
    expect(Object.keys(t.host)).toEqual([expect.stringMatching(/\/v2\/quay\.io$/), 'https://q.corp.example']);
    expect(t.host['https://q.corp.example']).toEqual({ capabilities: ['pull'] });
  });
});

describe('writing the certs.d tree with endpoints (issue 14)', () => {
  function files(): void {
    mkdirSync(join(dir, 'spec'), { recursive: true });
    writeFileSync(join(dir, 'spec', 'corp-ca.pem'), 'CA PEM\n');
    writeFileSync(join(dir, 'spec', 'client.pem'), 'CLIENT CERT\n');
    writeFileSync(join(dir, 'spec', 'client-key.pem'), 'CLIENT KEY\n', { mode: 0o600 });
  }

  it('puts the header value only into the 0600 file, copies the TLS files with their modes, and reports no secret', async () => {
    files();
    const p = plan(PRIVATE);
    const secret = 'Basic YWxpY2U6czNjcmV0';
    const env = { ART_AUTH: secret };
    const actions = await applyCertsDir(p, null, env);
    const file = join(p.containerd.certsDir, 'docker.io', 'hosts.toml');
    expect(readFileSync(file, 'utf8')).toContain(`Authorization = [ "${secret}" ]`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(p.containerd.certsDir, 'docker.io', 'lo-0-client.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(p.containerd.certsDir, 'docker.io', 'lo-0-ca.crt')).mode & 0o777).toBe(0o644);
    expect(readFileSync(join(p.containerd.certsDir, 'docker.io', 'lo-0-client.cert'), 'utf8')).toBe('CLIENT CERT\n');
    expect(JSON.stringify(actions) + JSON.stringify(p)).not.toContain('YWxpY2U6czNjcmV0');
    // Parsed as containerd reads it: the header carries the value.
    expect(resolveHosts('docker.io', readFileSync(file, 'utf8')).find((h) => h.host === 'artifactory.corp.example')!.header).toEqual({
      Authorization: [secret],
    });
    // A second run changes nothing.
    const again = (await applyCertsDir(p, null, env)).filter((a) => a.name !== p.containerd.caFile);
    expect(again.filter((a) => a.action !== 'noop')).toEqual([]);
  });

  it('a missing header variable or a value with a line break stops before anything is written', () => {
    const p = plan(PRIVATE);
    expect(() => hostsFileContents(p, {})).toThrow(/needs header values from \$ART_AUTH, which is not set/);
    let err: unknown;
    try {
      hostsFileContents(p, { ART_AUTH: 'Bearer a\r\nX-Evil: 1' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LoError);
    expect((err as LoError).exitCode).toBe(2);
    expect((err as Error).message).not.toContain('X-Evil');
  });

  it('removes the copies an endpoint no longer names, and leaves files lo did not write', async () => {
    files();
    const p = plan(PRIVATE);
    await applyCertsDir(p, null, { ART_AUTH: 'Bearer t' });
    writeFileSync(join(p.containerd.certsDir, 'docker.io', 'user-notes.txt'), 'mine');
    const fewer = plan(
      PRIVATE.replace('            tls: { caFile: ./corp-ca.pem, certFile: ./client.pem, keyFile: ./client-key.pem }\n', ''),
    );
    const actions = await applyCertsDir(fewer, null, { ART_AUTH: 'Bearer t' });
    expect(actions.filter((a) => a.action === 'remove').map((a) => a.name.split('/').pop())).toEqual([
      'lo-0-ca.crt',
      'lo-0-client.cert',
      'lo-0-client.key',
    ]);
    expect(readdirSync(join(p.containerd.certsDir, 'docker.io')).sort()).toEqual(['hosts.toml', 'user-notes.txt']);
  });
});

describe('a mirror of a private upstream (issue 14)', () => {
  const CORP = `  registries:
    mirrors:
      - name: corp
        url: https://harbor.corp.example
        tls: { caFile: certs/corp-ca.pem }
`;

  it('mounts the upstream CA where its TLS client reads it (SSL_CERT_DIR); the CA path is not in the hash (its content is in config.yml)', () => {
    const p = plan(CORP);
    const corp = p.registries.find((r) => r.name === 'corp')!;
    expect(corp.upstreamCa).toEqual({
      source: join(dir, 'spec', 'certs', 'corp-ca.pem'),
      path: join(corp.configDir, 'upstream-ca', 'ca.crt'),
    });
    expect(corp.container.env).toEqual(['SSL_CERT_DIR=/etc/lo/registry/upstream-ca']);
    // The config directory is the mount: the CA copy is inside it.
    expect(corp.container.binds).toContainEqual({ source: corp.configDir, target: '/etc/lo/registry', readOnly: true });
    const other = plan(CORP.replace('certs/corp-ca.pem', 'other-ca.pem')).registries.find((r) => r.name === 'corp')!;
    expect(other.labels['dev.lok8s.lo.spec-hash']).toBe(corp.labels['dev.lok8s.lo.spec-hash']);
    expect(other.upstreamCa!.source).not.toBe(corp.upstreamCa!.source);
    // Without a CA the mirror is another container.
    const noCa = plan(CORP.replace('        tls: { caFile: certs/corp-ca.pem }\n', '')).registries.find((r) => r.name === 'corp')!;
    expect(noCa.labels['dev.lok8s.lo.spec-hash']).not.toBe(corp.labels['dev.lok8s.lo.spec-hash']);
    expect(p.registries.find((r) => r.name === 'build')!.container.env).toBeUndefined();
  });

  it('tokenEnv is the password of the token-service login, with usernameEnv or the user name "token"', () => {
    const tokenOnly = plan(`${CORP}        credentials: { tokenEnv: CORP_TOKEN }\n`).registries.find((r) => r.name === 'corp')!;
    expect(tokenOnly.labels['dev.lok8s.lo.credentials']).toBe('token:CORP_TOKEN');
    expect(tokenOnly.config).not.toContain('password');
    const cfg = parseYaml(registryConfigWithSecrets(tokenOnly, { CORP_TOKEN: 'tok-123' }));
    expect(cfg.proxy).toEqual({ remoteurl: 'https://harbor.corp.example', username: TOKEN_USERNAME, password: 'tok-123' });
    const withUser = plan(`${CORP}        credentials: { usernameEnv: CORP_USER, tokenEnv: CORP_TOKEN }\n`).registries.find(
      (r) => r.name === 'corp',
    )!;
    expect(withUser.labels['dev.lok8s.lo.credentials']).toBe('CORP_USER/token:CORP_TOKEN');
    expect(parseYaml(registryConfigWithSecrets(withUser, { CORP_USER: 'robot$ci', CORP_TOKEN: 'tok' })).proxy).toMatchObject({
      username: 'robot$ci',
      password: 'tok',
    });
    expect(() => registryConfigWithSecrets(withUser, { CORP_TOKEN: 'tok' })).toThrow(/\$CORP_USER, which is not set/);
  });
});

describe('a shared mirror of a private upstream keeps its CA (issue 14)', () => {
  const sha = (text: string): string => createHash('sha256').update(text).digest('hex');
  const CA_A = '-----BEGIN CERTIFICATE-----\nMIIBcorpA\n-----END CERTIFICATE-----\n';
  const CA_B = '-----BEGIN CERTIFICATE-----\nMIIBcorpB\n-----END CERTIFICATE-----\n';
  /** A project's spec file in its own directory, naming `ca` (relative) as the corp mirror's upstream CA. */
  function project(name: string, ca: string | null, content = CA_A): string {
    const d = join(dir, name);
    mkdirSync(d, { recursive: true });
    if (ca) writeFileSync(join(d, ca), content);
    const file = join(d, 'cluster.lok8s.yaml');
    writeFileSync(
      file,
      HEAD.replace('name: priv', `name: ${name}`) +
        `  registries:\n    mirrors:\n      - name: corp\n        url: https://harbor.corp.example\n${ca ? `        tls: { caFile: ${ca} }\n` : ''}`,
    );
    return file;
  }
  const paths = (): { stateDir: string; caRoot: string } => ({ stateDir: join(dir, 'state'), caRoot: join(dir, 'ca') });
  /** What observeShared reads back from the labels of the mirror project `file` planned. */
  async function running(file: string): Promise<ObservedShared> {
    const { plan: p } = await loadPlan({ config: file }, { paths: paths() });
    const corp = p.registries.find((r) => r.name === 'corp')!;
    return {
      mirrors: [
        {
          name: 'corp',
          ip: corp.ip,
          url: corp.labels[LABELS.upstream]!,
          registry: corp.labels[LABELS.registry]!,
          project: corp.labels[LABELS.createdBy]!,
          credentials: corp.labels[LABELS.credentials]!,
          ...(corp.labels[LABELS.upstreamAccess] !== undefined ? { upstreamAccess: corp.labels[LABELS.upstreamAccess] } : {}),
        },
      ],
    };
  }
  const planWith = (file: string, observed: ObservedShared) =>
    loadPlan({ config: file }, { paths: paths(), observeShared: async () => observed });

  it('labels the mirror with the digest of the CA content (never its path), empty without a CA', async () => {
    const a = await loadPlan({ config: project('pa', 'corp-ca.pem') }, { paths: paths() });
    const corp = a.plan.registries.find((r) => r.name === 'corp')!;
    expect(corp.labels[LABELS.upstreamAccess]).toBe(`ca=sha256:${sha(CA_A)}`);
    expect(Object.values(corp.labels).join(' ')).not.toContain('corp-ca.pem');
    const none = await loadPlan({ config: project('pn', null) }, { paths: paths() });
    expect(none.plan.registries.find((r) => r.name === 'corp')!.labels[LABELS.upstreamAccess]).toBe('');
    // A digest is a label only: the same spec hash as before the label existed.
    expect(corp.labels[LABELS.specHash]).toBe(
      plan(
        `  registries:\n    mirrors:\n      - name: corp\n        url: https://harbor.corp.example\n        tls: { caFile: ${join(dir, 'pa', 'corp-ca.pem')} }\n`,
      ).registries.find((r) => r.name === 'corp')!.labels[LABELS.specHash],
    );
  });

  it('the same CA content at another path reuses the running mirror; another CA, or none, is E_PLAN_CONFLICT naming file, path, project and fix', async () => {
    const observed = await running(project('pa', 'corp-ca.pem'));
    const same = await planWith(project('pb', 'certs-copy.pem', CA_A), observed);
    expect(same.plan.registries.find((r) => r.name === 'corp')!.ip).toBe(observed.mirrors[0]!.ip);

    const otherFile = project('pc', 'other-ca.pem', CA_B);
    const err = await planWith(otherFile, observed).then(
      () => null,
      (e: unknown) => e as PlanConflictError,
    );
    expect(err).toBeInstanceOf(PlanConflictError);
    expect(err!.exitCode).toBe(2);
    expect(err!.message).toBe(
      `${otherFile}: spec.registries.mirrors[0].tls.caFile: shared mirror "corp" already runs for project pa with upstream CA sha256:${sha(CA_A).slice(0, 16)}…; this spec names ${join(dir, 'pc', 'other-ca.pem')} (upstream CA sha256:${sha(CA_B).slice(0, 16)}…)`,
    );
    expect(err!.hint).toBe(
      'give "corp" the same CA (the same file content) in both specs\' tls.caFile, give this mirror another name, or set spec.registries.shared.enabled: false; to move every project to the new CA, remove the running mirror first with `lo registry down --shared` (its cache volume is kept)',
    );

    await expect(planWith(project('pd', null), observed)).rejects.toThrow(
      'shared mirror "corp" already runs for project pa with upstream CA sha256:' +
        sha(CA_A).slice(0, 16) +
        '…; this spec names no upstream CA',
    );
    // A mirror running without a CA is not taken over by a project that names one either.
    const plain = await running(project('pe', null));
    await expect(planWith(project('pf', 'ca.pem', CA_A), plain)).rejects.toThrow(
      /already runs for project pe with no upstream CA; this spec names .*ca\.pem \(upstream CA sha256:/,
    );
  });

  it('is not compared for status and teardown (strict: false), without shared mirrors, or with a mirror made before the label', async () => {
    const observed = await running(project('pa', 'corp-ca.pem'));
    const other = project('pc', 'other-ca.pem', CA_B);
    await expect(loadPlan({ config: other }, { paths: paths(), observeShared: async () => observed, strict: false })).resolves.toBeTruthy();
    const { upstreamAccess: _, ...unlabelled } = observed.mirrors[0]!;
    await expect(planWith(other, { mirrors: [unlabelled] })).resolves.toBeTruthy();
  });
});

describe('lo plan and lo doctor show the endpoints (issue 14)', () => {
  it('lists each entry in order, with header variables (never values), and warns on skip_verify', async () => {
    const { endpointLines } = await import('../../src/cli/commands/plan.js');
    const { endpointChecks } = await import('../../src/usecases/doctor.js');
    const p = plan(PRIVATE);
    const lines = endpointLines(p).join('\n');
    expect(lines).toContain('endpoints for docker.io:');
    expect(lines).toContain(
      '1. https://artifactory.corp.example/v2/docker-remote  pull,resolve; override_path; ca; client certificate; Authorization: <from $ART_AUTH>',
    );
    expect(lines).toContain('then https://registry-1.docker.io');
    expect(lines).toMatch(/1\. https:\/\/harbor-a\.corp\.example {2}pull,resolve; SKIP_VERIFY/);
    expect(lines).toContain('then nothing (default endpoint disabled)');
    expect(lines).toContain(`endpoints for "*" (every other registry, certs.d/_default):`);
    const checks = endpointChecks(p);
    expect(checks.map((c) => [c.name, c.status])).toEqual([
      ['endpoints docker.io', 'ok'],
      ['endpoints harbor.corp.example', 'warn'],
      ['endpoints *', 'ok'],
    ]);
    expect(checks[1]!.fix).toMatch(/tls\.caFile/);
  });
});
