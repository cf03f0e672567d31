/**
 * lo's generated kind config through the REAL kind binary's strict decoder (kind 0.33 from Debian sid, put in
 * /var/cache/lo-testbed/bin/kind by scripts/testbed.sh; LO_REAL_KIND overrides). kind decodes the config
 * before it looks for a container runtime, so `kind create cluster` runs with a PATH where docker, podman,
 * nerdctl and finch are stubs that log their arguments and fail: kind gets as far as `docker info` and can
 * never create a node or pull an image. The assertion is on kind's error: a runtime error means the config
 * decoded; a decoding error is a bug in lo's renderer.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { planCluster } from '../../src/plan/planCluster.js';
import { renderKindConfig } from '../../src/plan/render/renderKindConfig.js';

const KIND = process.env.LO_REAL_KIND || '/var/cache/lo-testbed/bin/kind';
const haveKind = existsSync(KIND);
if (!haveKind) console.warn(`[kindStrict] skipped: no real kind binary at ${KIND} (run scripts/testbed.sh as root, or set LO_REAL_KIND)`);

let dir: string;
const runtimeLog = (): string[] => {
  try {
    return readFileSync(join(dir, 'runtime.log'), 'utf8').trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
};

function planOf(body: string) {
  const text = `apiVersion: cluster.lok8s.dev/v1beta1
kind: Lo
metadata:
  name: ks
spec:
  cluster:
    domain: ks.example
  network:
    name: ks
    cidr: 10.160.9.0/24
${body}`;
  return planCluster(parseSpec(text, { file: 'ks.yaml', domain: 'ks.example' }), { paths: { stateDir: '/state', caRoot: '/ca' } });
}

async function kindCreate(configYaml: string): Promise<{ code: number; stderr: string }> {
  const file = join(dir, `kind-${Math.random().toString(16).slice(2)}.yaml`);
  writeFileSync(file, configYaml);
  const r = await execa(KIND, ['create', 'cluster', '--config', file, '--kubeconfig', join(dir, 'kubeconfig')], {
    env: { PATH: join(dir, 'bin'), HOME: dir, KIND_EXPERIMENTAL_PROVIDER: '' },
    extendEnv: false,
    reject: false,
    timeout: 30_000,
  });
  return { code: r.exitCode ?? 1, stderr: String(r.stderr) };
}

describe.skipIf(!haveKind)('the real kind (0.33) decodes the kind config lo renders', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lo-kindstrict-'));
    const bin = join(dir, 'bin');
    await execa('mkdir', ['-p', bin]);
    for (const name of ['docker', 'podman', 'nerdctl', 'finch']) {
      const stub = join(bin, name);
      writeFileSync(stub, `#!/bin/sh\necho "${name} $*" >> "${join(dir, 'runtime.log')}"\necho "${name}: stub, refusing" >&2\nexit 1\n`);
      chmodSync(stub, 0o755);
    }
    expect((await execa(KIND, ['version'])).stdout).toMatch(/^kind v0\.\d+/);
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const cases: Array<[string, string]> = [
    ['one node, defaults', ''],
    [
      'HA with workers, host ports, P2P (discard_unpacked_layers) and 5 downloads',
      `  nodes:
    controlPlane: 3
    workers: 2
    maxConcurrentDownloads: 5
    hostPorts:
      - { containerPort: 80, hostPort: 18080 }
  registries:
    p2p:
      enabled: true
`,
    ],
  ];
  for (const [name, body] of cases) {
    it(`accepts: ${name}`, async () => {
      const before = runtimeLog().length;
      const r = await kindCreate(renderKindConfig(planOf(body)));
      expect(r.code).not.toBe(0);
      expect(r.stderr).not.toMatch(/decode config|unmarshal|unknown field|not found in type/i);
      // It got past decoding to the runtime probe, and the only runtime call was a read-only `info`.
      expect(r.stderr).toMatch(/docker info|podman|nerdctl|container runtime|provider/i);
      const calls = runtimeLog().slice(before);
      expect(calls.length).toBeGreaterThan(0);
      for (const c of calls) expect(c).toMatch(/^(docker|podman|nerdctl|finch) (info|version|-v|--version)\b/);
    });
  }

  it('rejects an unknown field (so the accept cases above mean something)', async () => {
    const bad = renderKindConfig(planOf('')).replace(/^name: (.*)$/m, 'name: $1\nnotAKindField: true');
    const r = await kindCreate(bad);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/unable to decode config/);
    expect(r.stderr).toMatch(/notAKindField/);
  });

  it('rejects a field at the wrong place in a node', async () => {
    const bad = renderKindConfig(planOf('')).replace(
      /^(\s*)- role: control-plane$/m,
      '$1- role: control-plane\n$1  containerdConfigPatches: []',
    );
    expect(bad).toContain('containerdConfigPatches: []');
    const r = await kindCreate(bad);
    expect(r.stderr).toMatch(/unable to decode config/);
  });
});
