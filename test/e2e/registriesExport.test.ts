/**
 * `lo registries export` end to end on the real engine: a lo mirror of docker.io (real registry:2 over TLS
 * with lo's CA) whose upstream is a registry:2 of the test's own. The containerd export is consumed by a real
 * containerd on the host, a throwaway one with its own root, state and socket under the test's temp dir:
 * `ctr images pull --hosts-dir <export>` fetches docker.io/library/<x> and the mirror's access log shows the
 * host's request (the route), the upstream's shows the mirror's. The k3s export is written as k3d reads it
 * and checked against the plan. A K3s registries.yaml from K3s's docs is imported (--write), provisioned
 * (`lo registry up`, the Authorization header from its variable) and pulled through by the host containerd.
 * Subnets 10.140.214-215.0/24, names `lodk-…`.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pollUntil } from '../support/poll.mjs';
import { parse as parseYaml } from 'yaml';
import { registryUp } from '../../src/usecases/registry.js';
import {
  seedSharedUpstream,
  cleanupRun,
  docker,
  makeImage,
  pushToRegistry,
  runLo,
  startUpstream,
  workspace,
  type SpecInput,
  type Workspace,
} from '../helpers/docker.js';

let ws: Workspace;
let spec: SpecInput;
let specFile: string;
let digest: string;
let containerd: ResultPromise | undefined;
const UPSTREAM_IP = '10.140.215.200';

beforeAll(async () => {
  ws = workspace();
  const id = ws.runId;
  spec = {
    name: `${id}x`,
    cidr: '10.140.214.0/24',
    sharedName: `${id}s`,
    sharedCidr: '10.140.215.0/24',
    tls: true,
    mirrors: [{ name: `${id}-hub`, url: `http://${UPSTREAM_IP}:5000`, registry: 'docker.io' }],
  };
  specFile = ws.writeSpec(spec);
  digest = (await seedSharedUpstream(ws, spec, UPSTREAM_IP)).digest;
  await registryUp({ config: specFile }, ws.deps);
});

afterAll(async () => {
  if (containerd) {
    containerd.kill('SIGTERM');
    await containerd.catch(() => undefined);
  }
  await cleanupRun(ws);
});

/** A containerd of the test's own on the host: own root, state, sockets; no CRI; native snapshotter. */
async function startHostContainerd(dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const sock = join(dir, 'c.sock');
  const config = join(dir, 'config.toml');
  writeFileSync(
    config,
    [
      'version = 2',
      `root = "${join(dir, 'root')}"`,
      `state = "${join(dir, 'state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      `[grpc]\n  address = "${sock}"`,
      `[ttrpc]\n  address = "${join(dir, 't.sock')}"`,
      '[debug]\n  address = ""',
      '[metrics]\n  address = ""',
      `[plugins."io.containerd.internal.v1.opt"]\n  path = "${join(dir, 'opt')}"`,
      '',
    ].join('\n'),
  );
  containerd = execa('containerd', ['--config', config], { reject: false, all: true });
  const r = await pollUntil(
    () => execa('ctr', ['--address', sock, 'version'], { reject: false, timeout: 5000 }),
    (v) => v.exitCode === 0,
    { timeoutMs: 20_000, everyMs: 200 },
  );
  if (r.exitCode !== 0) throw new Error(`host containerd did not start: ${r.stderr}`);
  return sock;
}

describe('lo registries export', () => {
  it('--format containerd: a real host containerd pulls docker.io/library/<x> through the lo mirror with ctr --hosts-dir', async () => {
    const id = ws.runId;
    const out = join(ws.dir, 'export-certs.d');
    const r = await runLo(['--config', specFile, 'registries', 'export', '--format', 'containerd', '--out', out], ws.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/wrote .*docker\.io\/hosts\.toml \(0644\)/);
    const plan = ws.plan(spec);
    expect(readFileSync(join(out, '_lo', 'ca.crt'), 'utf8')).toBe(readFileSync(plan.tls.caCertPath, 'utf8'));
    expect(readFileSync(join(out, 'docker.io', 'hosts.toml'), 'utf8')).toContain(`ca = "${join(out, '_lo', 'ca.crt')}"`);

    const sock = await startHostContainerd(join(ws.dir, 'ctd'));
    const pull = await execa(
      'ctr',
      ['--address', sock, 'images', 'pull', '--snapshotter', 'native', '--hosts-dir', out, `docker.io/library/${id}:v1`],
      { reject: false, all: true, timeout: 60_000 },
    );
    expect(pull.exitCode, pull.all).toBe(0);
    const list = await execa('ctr', ['--address', sock, 'images', 'ls']);
    expect(list.stdout).toContain(`docker.io/library/${id}:v1`);
    expect(list.stdout).toContain(digest);

    // The route: the host (the shared network's gateway) asked lo's mirror, and the mirror asked the upstream.
    const mirror = plan.registries.find((m) => m.role === 'mirror')!;
    const mirrorLog = String(await docker.getContainer(mirror.containerName).logs({ stdout: true, stderr: true }));
    const hostLines = mirrorLog.split('\n').filter((l) => l.includes(`/v2/library/${id}/manifests/v1`) && l.includes('10.140.215.1:'));
    expect(hostLines.length, mirrorLog.slice(-2000)).toBeGreaterThan(0);
    const upstreamLog = String(await docker.getContainer(`${id}-upstream`).logs({ stdout: true, stderr: true }));
    expect(upstreamLog.split('\n').some((l) => l.includes(`/v2/library/${id}/manifests/v1`) && l.includes(`${mirror.ip}:`))).toBe(true);
  });

  it('--format k3s --out DIR: a registries.yaml k3d reads (--registry-config) and lo’s CA beside it, checked against the plan', async () => {
    const out = join(ws.dir, 'k3d');
    mkdirSync(out);
    const r = await runLo(['--config', specFile, 'registries', 'export', '--format', 'k3s', '--out', out], ws.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`--volume ${join(out, 'lo-ca.crt')}:/etc/rancher/k3s/lo-ca.crt`);
    const plan = ws.plan(spec);
    const doc = parseYaml(readFileSync(join(out, 'registries.yaml'), 'utf8')) as {
      mirrors: Record<string, { endpoint: string[] }>;
      configs: Record<string, { tls: { ca_file: string } }>;
    };
    const mirror = plan.registries.find((m) => m.role === 'mirror')!;
    expect(doc.mirrors['docker.io']!.endpoint).toEqual([`https://10.140.214.102/v2/docker.io`, mirror.endpoint, mirror.replica!.endpoint]);
    expect(doc.mirrors['lok8s.local']!.endpoint).toEqual(['https://10.140.214.101']);
    expect(doc.configs[mirror.ip]).toEqual({ tls: { ca_file: '/etc/rancher/k3s/lo-ca.crt' } });
    expect(readFileSync(join(out, 'lo-ca.crt'), 'utf8')).toBe(readFileSync(plan.tls.caCertPath, 'utf8'));
    expect(statSync(join(out, 'registries.yaml')).mode & 0o777).toBe(0o644);

    // --json: one document naming the files, never their content
    const j = await runLo(['--config', specFile, 'registries', 'export', '--format', 'docker', '--json'], ws.env);
    expect(j.code, j.stderr).toBe(0);
    const doc2 = JSON.parse(j.stdout) as { docker: { daemonJson: Record<string, string[]> } };
    expect(doc2.docker.daemonJson['registry-mirrors']).toEqual([mirror.endpoint, mirror.replica!.endpoint]);
  });

  it("a K3s registries.yaml (the docs' Without TLS / With Authentication example) imported, provisioned and pulled through by the host containerd", async () => {
    const id = ws.runId;
    // K3s's documented example with its registry and endpoint replaced by the test's own registry:2.
    const corpIp = '10.140.215.201';
    await startUpstream(ws, `${id}-corp`, spec.sharedName, corpIp);
    const image = await makeImage(ws, 'corp', 'v1');
    await pushToRegistry(image, `${corpIp}:5000/team/${id}:v1`);
    const k3s = join(ws.dir, 'k3s-registries.yaml');
    writeFileSync(
      k3s,
      `mirrors:\n  corp.example:\n    endpoint:\n      - "http://${corpIp}:5000"\nconfigs:\n  "${corpIp}:5000":\n    auth:\n      username: xxxxxx # this is the registry username\n      password: xxxxxx # this is the registry password\n`,
    );
    const imp = await runLo(['--config', specFile, 'registries', 'import', k3s, '--write'], ws.env);
    expect(imp.code, imp.stderr).toBe(0);
    expect(imp.stdout).toMatch(/^set LO_10_140_215_201_5000_AUTH: Basic/m);
    expect(readFileSync(specFile, 'utf8')).not.toContain('xxxxxx');

    const secret = `Basic ${Buffer.from(`${id}:pw-${id}`).toString('base64')}`;
    const env = { ...ws.env, LO_10_140_215_201_5000_AUTH: secret };
    const up = await runLo(['--config', specFile, 'registry', 'up'], env);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout + up.stderr).not.toContain(secret);

    const out = join(ws.dir, 'export-2');
    const ex = await runLo(['--config', specFile, 'registries', 'export', '--format', 'containerd', '--out', out, '--json'], ws.env);
    expect(ex.code, ex.stderr).toBe(0);
    expect(ex.stdout).not.toContain(secret);
    const corpToml = join(out, 'corp.example', 'hosts.toml');
    expect(statSync(corpToml).mode & 0o777).toBe(0o600);
    expect(readFileSync(corpToml, 'utf8')).toContain(secret);

    // The host containerd the first test started (tests in a file run in order).
    const sock = join(ws.dir, 'ctd', 'c.sock');
    const pull = await execa(
      'ctr',
      ['--address', sock, 'images', 'pull', '--snapshotter', 'native', '--hosts-dir', out, `corp.example/team/${id}:v1`],
      { reject: false, all: true, timeout: 60_000 },
    );
    expect(pull.exitCode, pull.all).toBe(0);
    // The route: the host asked the imported endpoint for corp.example's image.
    const corpLog = String(await docker.getContainer(`${id}-corp`).logs({ stdout: true, stderr: true }));
    expect(corpLog.split('\n').some((l) => l.includes(`/v2/team/${id}/manifests/v1`) && l.includes('10.140.215.1:'))).toBe(true);
  });
});
