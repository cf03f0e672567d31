import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContainerState, DockerClients } from '../../src/adapters/docker/index.js';
import { KIND_LABELS } from '../../src/plan/labels.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { ConfigError, ExitCode, LoError } from '../../src/errors/loError.js';
import { lockProject, PROJECT_LOCK_FILE } from '../../src/apply/projectLock.js';
import type { KindCli } from '../../src/adapters/kindCli.js';
import type { Kubectl } from '../../src/adapters/kubectl.js';
import { planCluster } from '../../src/plan/planCluster.js';
import type { Plan } from '../../src/plan/types.js';
import { destroy } from '../../src/usecases/destroy.js';
import { provision, type ProvisionDeps } from '../../src/usecases/provision.js';
import { REGISTRY_STAGES } from '../../src/usecases/provisionDeps.js';
import { stageOfAction } from '../../src/apply/applyRegistries.js';
import { StepFailedError, type StepReporter } from '../../src/usecases/runSteps.js';
import { renderConfigMaps } from '../../src/plan/render/renderConfigMaps.js';

/**
 * The provision orchestrator with in-memory kind/kubectl/registry steps (the real ones run in
 * test/e2e/provision.test.ts): step order, what a failure names, exit codes, warnings, idempotency.
 */
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lopv-unit-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function planFor(extra = '', workers = 0): Plan {
  const text = `apiVersion: cluster.lok8s.dev/v1beta1
kind: Lo
metadata:
  name: lopvu
spec:
  cluster:
    domain: lopvu.test
  network:
    name: lopvu
    cidr: 10.160.90.0/24
  nodes:
    workers: ${workers}
  registries:
    shared:
      enabled: false
${extra}`;
  return planCluster(parseSpec(text, { file: 'u.yaml', domain: 'lopvu.test' }), {
    paths: { stateDir: join(dir, 'state'), caRoot: join(dir, 'ca') },
  });
}

/** kind as a set of cluster names; create writes the kubeconfig like kind does (HA: plus a load balancer). */
function memoryKind(): KindCli & { created: string[]; configs: string[]; roles: Map<string, string> } {
  const clusters = new Map<string, string[]>();
  const roles = new Map<string, string>();
  const k = {
    created: [] as string[],
    configs: [] as string[],
    roles,
    getClusters: async () => [...clusters.keys()],
    createCluster: async ({ name, configPath, kubeconfigPath }: { name: string; configPath: string; kubeconfigPath: string }) => {
      const cfg = parseYaml(readFileSync(configPath, 'utf8')) as { nodes: Array<{ role: string }> };
      k.configs.push(readFileSync(configPath, 'utf8'));
      let w = 0;
      let cp = 0;
      const nodes = cfg.nodes.map((n) => {
        const node = n.role === 'worker' ? `${name}-worker${w++ ? w : ''}` : `${name}-control-plane${cp++ ? cp : ''}`;
        roles.set(node, n.role);
        return node;
      });
      if (cp > 1) {
        nodes.push(`${name}-external-load-balancer`);
        roles.set(`${name}-external-load-balancer`, 'external-load-balancer');
      }
      clusters.set(name, nodes);
      writeFileSync(kubeconfigPath, 'apiVersion: v1\n', { mode: 0o644 });
      k.created.push(name);
    },
    getNodes: async (name: string) => clusters.get(name) ?? [],
    exportKubeconfig: async (_name: string, path: string) => writeFileSync(path, 'apiVersion: v1\n'),
    deleteCluster: async (name: string) => {
      clusters.delete(name);
    },
    version: async () => 'kind v0.30.0',
  };
  return k;
}

function memoryKubectl(): { kubectl: (kc: string) => Kubectl; applied: string[]; store: Map<string, Record<string, string>> } {
  const store = new Map<string, Record<string, string>>();
  const applied: string[] = [];
  return {
    store,
    applied,
    kubectl: () => ({
      getConfigMapData: async (ns, name) => store.get(`${ns}/${name}`) ?? null,
      apply: async (yaml) => {
        applied.push(yaml);
        for (const doc of yaml.split('---\n')) {
          const o = parseYaml(doc) as { metadata: { namespace: string; name: string }; data: Record<string, string> };
          store.set(`${o.metadata.namespace}/${o.metadata.name}`, o.data);
        }
        return '';
      },
      version: async () => 'v1.34.0',
    }),
  };
}

function recorder(): StepReporter & { events: string[]; warnings: string[] } {
  const events: string[] = [];
  const warnings: string[] = [];
  return {
    events,
    warnings,
    start: (s) => events.push(`start ${s}`),
    succeed: (s) => events.push(`ok ${s}`),
    skip: (s) => events.push(`skip ${s}`),
    fail: (s) => events.push(`fail ${s}`),
    warn: (m) => warnings.push(m),
  };
}

function deps(
  plan: Plan,
  over: Partial<ProvisionDeps> = {},
): ProvisionDeps & { kindMem: ReturnType<typeof memoryKind>; kube: ReturnType<typeof memoryKubectl> } {
  const kindMem = memoryKind();
  const kube = memoryKubectl();
  let registriesUp = false;
  return {
    kindMem,
    kube,
    loadPlan: async () => plan,
    registries: {
      stages: REGISTRY_STAGES,
      run: async (_p, stages) => {
        const was = registriesUp;
        registriesUp = true;
        const a = was ? 'noop' : 'create';
        for (const s of ['networks', 'tls', 'certs.d', 'registries']) stages.start(s);
        for (const s of ['networks', 'tls', 'certs.d', 'registries']) stages.done(s);
        return [
          { step: 'networks', kind: 'network', name: 'lopvu', action: a },
          { step: 'registries', kind: 'container', name: 'lopvu-registry-build', action: a },
        ];
      },
    },
    kind: kindMem,
    // Only what provision reads without a shared network: kind's role label of each node container.
    docker: async () =>
      ({
        containers: {
          inspect: async (name: string): Promise<Partial<ContainerState>> => ({
            name,
            labels: { [KIND_LABELS.role]: kindMem.roles.get(name)! },
          }),
        },
      }) as unknown as DockerClients,
    kubectl: kube.kubectl,
    ...over,
  };
}

describe('provision orchestration', () => {
  it('runs the steps in order, creates the cluster and applies the rendered ConfigMaps; a re-run changes nothing', async () => {
    const plan = planFor();
    const rep = recorder();
    const d = deps(plan, { reporter: rep });
    const first = await provision(d);
    expect(first.steps.map((s) => `${s.step}:${s.status}`)).toEqual([
      'validate:done',
      'networks:done',
      'tls:done',
      'certs.d:done',
      'registries:done',
      'kind:done',
      'connect:done',
      'configmaps:done',
      'p2p:skipped',
    ]);
    expect(first.changed).toBe(true);
    expect(first.steps.find((s) => s.step === 'registries')!.actions).toEqual([
      { action: 'create', object: 'container lopvu-registry-build' },
    ]);
    expect(d.kindMem.created).toEqual(['lopvu']);
    expect(d.kube.applied).toHaveLength(1);
    expect(Object.fromEntries(d.kube.store)).toEqual(
      Object.fromEntries(renderConfigMaps(plan).map((m) => [`${m.metadata.namespace}/${m.metadata.name}`, m.data])),
    );
    expect(statSync(plan.cluster.kubeconfigPath).mode & 0o777).toBe(0o600);
    expect(first.push).toEqual({ push: 'docker push 10.160.90.101/myapp:dev', image: 'lok8s.local/myapp:dev' });
    expect(first.cluster.nodes).toEqual(['lopvu-control-plane']);
    expect(rep.events.slice(0, 7)).toEqual([
      'start validate',
      'ok validate',
      'start networks',
      'ok networks',
      'ok tls',
      'ok certs.d',
      'ok registries',
    ]);

    const again = await provision(d);
    expect(again.changed).toBe(false);
    expect(again.steps.flatMap((s) => s.actions).every((a) => a.action === 'noop')).toBe(true);
    expect(d.kindMem.created).toEqual(['lopvu']);
    expect(d.kube.applied).toHaveLength(1);
  });

  it('a failing step stops the run, is named in the error and exits 5', async () => {
    const plan = planFor();
    const d = deps(plan);
    d.kind.createCluster = async () => {
      throw new Error('boom: node image not found');
    };
    const rep = recorder();
    const err = await provision({ ...d, reporter: rep }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StepFailedError);
    expect((err as StepFailedError).step).toBe('kind');
    expect((err as StepFailedError).exitCode).toBe(ExitCode.stepFailed);
    expect((err as Error).message).toMatch(/step "kind".*boom: node image not found/);
    expect(rep.events).toContain('fail kind');
    expect(rep.events).not.toContain('start configmaps');
    expect(d.kube.applied).toHaveLength(0);
  });

  it('a failure inside the registry executor names the step the executor reported it in', async () => {
    const tlsFail = deps(planFor(), {
      registries: {
        stages: REGISTRY_STAGES,
        run: async (_p, stages) => {
          stages.start('networks');
          stages.start('tls');
          const err = Object.assign(new Error('rootCA-key.pem does not match rootCA.pem'), { code: 'E_TLS' });
          stages.failed('tls', err);
          stages.failed('networks', err);
          throw err;
        },
      },
    });
    expect(((await provision(tlsFail).catch((e: unknown) => e)) as StepFailedError).step).toBe('tls');
  });

  it('a failure the executor did not attribute names the stage still running', async () => {
    const d = deps(planFor(), {
      registries: {
        stages: REGISTRY_STAGES,
        run: async (_p, stages) => {
          stages.start('networks');
          stages.done('networks');
          stages.start('tls');
          throw new Error('CAROOT not writable');
        },
      },
    });
    const err = (await provision(d).catch((e: unknown) => e)) as StepFailedError;
    expect(err.step).toBe('tls');
    expect(err.message).toContain('CAROOT not writable');
  });

  it('bad input keeps exit code 2 and creates nothing', async () => {
    const d = deps(planFor(), {
      loadPlan: async () => {
        throw new ConfigError([{ file: 'x.yaml', path: 'spec.nodes.workers', line: 3, message: 'must be >= 0' }]);
      },
    });
    const err = (await provision(d).catch((e: unknown) => e)) as StepFailedError;
    expect(err.step).toBe('validate');
    expect(err.exitCode).toBe(ExitCode.badInput);
    expect(d.kindMem.created).toEqual([]);
  });

  it('warns once with the exact trust command when the host does not trust the CA', async () => {
    const rep = recorder();
    const r = await provision(
      deps(planFor(), {
        reporter: rep,
        checkTrust: async () => ({ trusted: false, missing: ['system store'], command: 'lo --config u.yaml trust --yes' }),
      }),
    );
    expect(rep.warnings).toEqual([
      "this host does not trust lo's CA yet (missing: system store); run `lo --config u.yaml trust --yes` so `docker push` to the build registry verifies",
    ]);
    expect(r.warnings).toEqual(rep.warnings);
    const trusted = recorder();
    await provision(deps(planFor(), { reporter: trusted, checkTrust: async () => ({ trusted: true }) }));
    expect(trusted.warnings).toEqual([]);
  });

  it('P2P: the hook gets the node names; without a hook the step is skipped with a warning', async () => {
    const plan = planFor('', 2);
    expect(plan.p2p.enabled).toBe(true);
    let got: string[] = [];
    const r = await provision(
      deps(plan, { p2p: async (_p, nodes) => ((got = nodes), [{ kind: 'p2p agent', name: 'agents', action: 'create' }]) }),
    );
    expect(got).toEqual(['lopvu-control-plane', 'lopvu-worker', 'lopvu-worker2']);
    expect(r.steps.find((s) => s.step === 'p2p')).toMatchObject({
      status: 'done',
      actions: [{ action: 'create', object: 'p2p agent agents' }],
    });

    const rep = recorder();
    const r2 = await provision(deps(plan, { reporter: rep }));
    expect(r2.steps.find((s) => s.step === 'p2p')!.status).toBe('skipped');
    expect(rep.warnings.join('\n')).toMatch(/P2P is enabled/);
    // The kind config keeps compressed layers for the P2P mirror.
    expect(readFileSync(join(plan.paths.projectDir, 'kind-config.yaml'), 'utf8')).toContain('discard_unpacked_layers = false');
  });

  it("HA clusters: kind's external load balancer is not a node (no containerd): not handed to P2P", async () => {
    const plan = planFor('', 1);
    const ha = planCluster(
      parseSpec(
        `apiVersion: cluster.lok8s.dev/v1beta1
kind: Lo
metadata:
  name: lopvh
spec:
  cluster:
    domain: lopvh.test
  network:
    name: lopvh
    cidr: 10.160.91.0/24
  nodes:
    controlPlane: 3
    workers: 1
  registries:
    shared:
      enabled: false
`,
        { file: 'h.yaml', domain: 'lopvh.test' },
      ),
      { paths: plan.paths },
    );
    let got: string[] = [];
    const d = deps(ha, { p2p: async (_p, nodes) => ((got = nodes), []) });
    const r = await provision(d);
    expect(await d.kind.getNodes('lopvh')).toContain('lopvh-external-load-balancer');
    expect(got).toEqual(['lopvh-control-plane', 'lopvh-control-plane2', 'lopvh-control-plane3', 'lopvh-worker']);
    expect(r.cluster.nodes).toEqual(got);
  });

  it('an existing cluster from an older config is kept and reported', async () => {
    const d = deps(planFor());
    await provision(d);
    const rep = recorder();
    const changed = planFor('    p2p:\n      enabled: true\n');
    const r = await provision({ ...d, loadPlan: async () => changed, reporter: rep });
    expect(d.kindMem.created).toEqual(['lopvu']);
    expect(r.warnings.join('\n')).toMatch(/lo destroy.*lo provision/);
  });
});

describe('registry executor stages', () => {
  it("maps the executor's actions to provision steps", () => {
    const plan = planFor();
    expect(stageOfAction(plan, { kind: 'file', name: plan.containerd.hosts[0]!.path, action: 'create' })).toBe('certs.d');
    expect(stageOfAction(plan, { kind: 'file', name: plan.registries[0]!.configPath, action: 'create' })).toBe('registries');
    expect(stageOfAction(plan, { kind: 'certificate', name: 'x', action: 'noop' })).toBe('tls');
    expect(stageOfAction(plan, { kind: 'network', name: 'x', action: 'noop' })).toBe('networks');
  });
});

describe('destroy orchestration', () => {
  it('deletes the cluster and its files, then the registries; a second destroy finds nothing', async () => {
    const plan = planFor();
    const d = deps(plan);
    await provision(d);
    const calls: boolean[] = [];
    const dd = {
      loadPlan: async () => plan,
      kind: d.kind,
      removeRegistries: async (_p: Plan, o: { volumes: boolean }) => (
        calls.push(o.volumes),
        [{ kind: 'container' as const, name: 'x', action: 'remove' as const }]
      ),
    };
    const r = await destroy(dd, { volumes: false });
    expect(r.steps.map((s) => s.step)).toEqual(['validate', 'cluster', 'registries']);
    expect(r.steps[1]!.actions).toEqual([{ action: 'remove', object: 'cluster lopvu' }]);
    expect(calls).toEqual([false]);
    expect(() => statSync(plan.cluster.kubeconfigPath)).toThrow();
    const again = await destroy(dd, { volumes: true });
    expect(again.steps[1]!.actions).toEqual([{ action: 'noop', object: 'cluster lopvu', detail: 'not found' }]);
    expect(calls).toEqual([false, true]);
  });
});

describe('the project lock around provision and destroy', () => {
  it('a held lock stops provision and destroy before any step (exit 2); the lock is released after success and failure', async () => {
    const plan = planFor();
    const lockFile = join(plan.paths.projectDir, PROJECT_LOCK_FILE);
    const locker = (command: string) => (p: Plan) => lockProject(p.paths.projectDir, command);
    const d = deps(plan, { lockProject: locker('lo provision') });
    const held = await lockProject(plan.paths.projectDir, 'lo registry clean');
    const err = await provision(d).catch((e: unknown) => e);
    expect((err as LoError).code).toBe('E_PROJECT_LOCKED');
    expect((err as LoError).exitCode).toBe(ExitCode.badInput);
    expect((err as LoError).message).toContain('lo registry clean');
    expect(d.kindMem.created).toEqual([]);
    const dd = {
      loadPlan: async () => plan,
      kind: d.kind,
      removeRegistries: async () => [],
      lockProject: locker('lo destroy'),
    };
    await expect(destroy(dd, { volumes: true })).rejects.toMatchObject({ code: 'E_PROJECT_LOCKED' });
    // a dry run changes nothing and takes no lock
    expect((await provision(d, { dryRun: true })).dryRun).toBe(true);
    await held.release();

    await provision(d);
    expect(d.kindMem.created).toEqual(['lopvu']);
    expect(existsSync(lockFile)).toBe(false);
    d.kind.getClusters = async () => {
      throw new Error('kind broke');
    };
    await expect(destroy({ ...dd, kind: d.kind }, { volumes: false })).rejects.toThrow(/kind broke/);
    expect(existsSync(lockFile)).toBe(false);
  });
});

describe('lo provision --dry-run', () => {
  it('a fresh project: every step says what it would create; nothing is created', async () => {
    const d = deps(planFor('', 1));
    const r = await provision(d, { dryRun: true });
    expect(r.dryRun).toBe(true);
    expect(d.kindMem.created).toEqual([]);
    expect(d.kube.applied).toEqual([]);
    const byStep = Object.fromEntries(r.steps.map((s) => [s.step, s.actions.map((a) => `${a.action} ${a.object}`)]));
    expect(byStep.kind).toEqual(['create cluster lopvu']);
    expect(byStep.configmaps).toEqual([
      'create configmap kube-public/local-registry-hosting',
      'create configmap kube-system/lo-registries',
    ]);
  });

  it('after a provision, the diff is only noops', async () => {
    const d = deps(planFor());
    await provision(d);
    const applied = d.kube.applied.length;
    const r = await provision(d, { dryRun: true });
    const kinds = ['kind', 'connect', 'configmaps'];
    for (const s of r.steps.filter((x) => kinds.includes(x.step))) expect(s.actions.every((a) => a.action === 'noop')).toBe(true);
    expect(r.changed).toBe(false);
    expect(d.kindMem.created).toEqual(['lopvu']);
    expect(d.kube.applied.length).toBe(applied);
  });
});
