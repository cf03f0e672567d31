import { stepView } from '../../src/apply/action.js';
import { describe, expect, it } from 'vitest';
import type { ContainerState, NetworkState } from '../../src/adapters/docker/index.js';
import { LABELS, MANAGED_BY } from '../../src/plan/labels.js';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { planCluster } from '../../src/plan/planCluster.js';
import { diffDown } from '../../src/usecases/registryDown.js';
import { diffClean, type CleanObserved } from '../../src/usecases/registryClean.js';
import { diffCluster } from '../../src/usecases/destroy.js';
import { diffAgents, diffConnect } from '../../src/apply/nodeDiffs.js';
import { diffKindCluster, OLD_KIND_CONFIG } from '../../src/apply/ensureKindCluster.js';
import { diffConfigMaps } from '../../src/apply/applyConfigMaps.js';

const ours = { [LABELS.managedBy]: MANAGED_BY };
const container = (name: string, volume?: string): ContainerState => ({
  id: `id-${name}`,
  name,
  status: 'running',
  running: true,
  imageId: 'sha256:x',
  labels: ours,
  networks: { lodiff: { ip: '10.0.0.2' } },
  volumes: volume ? [{ name: volume, destination: '/var/lib/registry' }] : [],
  networkMode: 'lodiff',
});
const network = (name: string, attached: string[], labels: Record<string, string> = ours): NetworkState => ({
  id: name,
  name,
  subnet: '10.0.0.0/24',
  gateway: null,
  ipRange: null,
  bridgeName: null,
  labels,
  containers: attached.map((n) => ({ id: n, name: n, ip: null })),
});
const plan = planCluster(
  parseSpec('apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: lodiff\nspec: {}\n', { file: 'd.yaml' }),
  { paths: { stateDir: '/s', caRoot: '/c' } },
);

describe('diff functions (observed state -> actions), pure', () => {
  it('down removes every target; nothing left is nothing to do', () => {
    expect(diffDown([container('a'), container('b')])).toEqual([
      { kind: 'container', name: 'a', action: 'remove' },
      { kind: 'container', name: 'b', action: 'remove' },
    ]);
    expect(diffDown([])).toEqual([]);
  });

  it("clean removes containers, lo's volumes and a network left empty by the removal; keeps the rest with a reason", () => {
    const observed: CleanObserved = {
      containers: [container('lodiff-registry-build', 'lodiff-registry-build-data')],
      volumes: [
        { name: 'lodiff-registry-build-data', labels: ours },
        { name: 'foreign', labels: {} },
      ],
      networks: [
        { name: 'lodiff', role: 'project', state: network('lodiff', ['lodiff-registry-build', 'lodiff-control-plane']) },
        { name: 'empty-after', role: 'shared', state: network('empty-after', ['lodiff-registry-build']) },
        { name: 'theirs', role: 'project', state: network('theirs', [], {}) },
        { name: 'gone', role: 'project', state: null },
      ],
    };
    expect(diffClean(observed, plan)).toEqual([
      { kind: 'container', name: 'lodiff-registry-build', action: 'remove' },
      { kind: 'volume', name: 'lodiff-registry-build-data', action: 'remove' },
      { kind: 'network', name: 'lodiff', action: 'noop', reason: 'kept: still attached: lodiff-control-plane' },
      { kind: 'network', name: 'empty-after', action: 'remove' },
      { kind: 'network', name: 'theirs', action: 'noop', reason: 'kept: not created by lo' },
    ]);
  });

  it("clean keeps another project's volume and network (same metadata.name, other spec directory)", () => {
    const theirs = { ...ours, [LABELS.projectId]: 'f00df00df00df00d', [LABELS.specDir]: '/elsewhere/clusters/x' };
    const mine = { ...ours, [LABELS.projectId]: plan.project.id };
    const observed: CleanObserved = {
      containers: [],
      volumes: [
        { name: 'lodiff-registry-build-data', labels: theirs },
        { name: 'lodiff-registry-cache-data', labels: mine },
        { name: 'unlabelled-but-lo', labels: ours },
      ],
      networks: [{ name: 'lodiff', role: 'project', state: network('lodiff', [], theirs) }],
    };
    expect(diffClean(observed, plan)).toEqual([
      {
        kind: 'volume',
        name: 'lodiff-registry-build-data',
        action: 'noop',
        reason: 'kept: belongs to the project in /elsewhere/clusters/x',
      },
      { kind: 'volume', name: 'lodiff-registry-cache-data', action: 'remove' },
      { kind: 'volume', name: 'unlabelled-but-lo', action: 'remove' },
      { kind: 'network', name: 'lodiff', action: 'noop', reason: 'kept: belongs to the project in /elsewhere/clusters/x' },
    ]);
  });

  it('clean after clean: only noops (nothing of ours is left)', () => {
    const after: CleanObserved = {
      containers: [],
      volumes: [{ name: 'foreign', labels: {} }],
      networks: [{ name: 'lodiff', role: 'project', state: network('lodiff', ['lodiff-control-plane']) }],
    };
    expect(diffClean(after, plan).every((a) => a.action === 'noop')).toBe(true);
    expect(diffClean({ containers: [], volumes: [], networks: [] }, plan)).toEqual([]);
  });

  it('destroy deletes the cluster kind lists; a second destroy finds nothing', () => {
    expect(diffCluster(plan, ['other', 'lodiff']).map(stepView)).toEqual([{ action: 'remove', object: 'cluster lodiff' }]);
    expect(diffCluster(plan, ['other']).map(stepView)).toEqual([{ action: 'noop', object: 'cluster lodiff', detail: 'not found' }]);
  });

  it('kind: missing -> create; existing with the same config -> noop; another config -> warning; no kubeconfig -> export', () => {
    const c = plan.cluster;
    expect(diffKindCluster(plan, { clusters: [], kindConfig: null, kubeconfigExists: false }).map((a) => a.action)).toEqual(['create']);
    expect(diffKindCluster(plan, { clusters: ['lodiff'], kindConfig: c.kindConfig, kubeconfigExists: true }).map(stepView)).toEqual([
      { action: 'noop', object: 'cluster lodiff' },
    ]);
    expect(diffKindCluster(plan, { clusters: ['lodiff'], kindConfig: 'old', kubeconfigExists: false }).map(stepView)).toEqual([
      { action: 'noop', object: 'cluster lodiff' },
      { action: 'warn', object: 'cluster lodiff', detail: OLD_KIND_CONFIG },
      { action: 'create', object: `kubeconfig ${c.kubeconfigPath}` },
    ]);
  });

  it('ConfigMaps: absent -> create, other data -> update, same data -> noop (a second apply sends nothing)', () => {
    const [a, b] = plan.configMaps;
    expect(diffConfigMaps(plan, [null, { x: 'y' }]).map((x) => x.action)).toEqual(['create', 'update']);
    expect(diffConfigMaps(plan, [a!.data, b!.data]).map((x) => x.action)).toEqual(['noop', 'noop']);
  });

  it('connect: nodes off the network -> create; on it -> noop', () => {
    expect(
      diffConnect(
        [
          { name: 'n1', networks: ['lodiff'] },
          { name: 'n2', networks: ['lodiff', 'shared'] },
        ],
        'shared',
      ).map(stepView),
    ).toEqual([
      { action: 'create', object: 'node n1 -> shared' },
      { action: 'noop', object: 'node n2 -> shared' },
    ]);
  });

  it('P2P agents: missing -> create, stopped -> recreate, running -> noop, of unknown nodes -> remove', () => {
    const p2p = planCluster(
      parseSpec('apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: lodiff\nspec:\n  nodes:\n    workers: 2\n', {
        file: 'd.yaml',
      }),
      { paths: { stateDir: '/s', caRoot: '/c' } },
    );
    expect(
      diffAgents(p2p, [
        { node: 'lodiff-worker', agent: 'lodiff-worker-lo-p2p', running: false },
        { node: 'lodiff-worker2', agent: 'lodiff-worker2-lo-p2p', running: true },
        { node: 'lodiff-worker3', agent: 'lodiff-worker3-lo-p2p', running: true },
      ])
        .map(stepView)
        .map((a) => `${a.action} ${a.object}`),
    ).toEqual([
      'create p2p agent lodiff-control-plane-lo-p2p',
      'recreate p2p agent lodiff-worker-lo-p2p',
      'noop p2p agent lodiff-worker2-lo-p2p',
      'remove p2p agent lodiff-worker3-lo-p2p',
    ]);
    const all = p2p.p2p.agents.map((a) => ({ node: a.node, agent: a.containerName, running: true }));
    expect(diffAgents(p2p, all).every((a) => a.action === 'noop')).toBe(true);
  });
});
