import { describe, expect, it } from 'vitest';
import { SPEC_DEFAULTS, defaultP2PEnabled, defaultRegistryFor } from '../../src/spec/defaults.js';
import {
  domainHasSubnet,
  hostPortsAreValid,
  mirrorRegistriesAreValid,
  mirrorsFit,
  p2pPortsDiffer,
  ruleContext,
  subnetsDoNotOverlap,
  type SpecRule,
} from '../../src/spec/rules.js';
import type { CheckedDoc } from '../../src/spec/specDoc.js';
import { formatPath } from '../../src/spec/yamlPosition.js';

/** Runs one rule on a typed document, the way parseSpec does, and returns `path: message` lines. */
function run(rule: SpecRule, doc: CheckedDoc, opts: { dirDomain?: string; wrote?: string[] } = {}): string[] {
  const wrote = new Set(opts.wrote ?? []);
  const ctx = ruleContext(doc, opts.dirDomain, (p) => wrote.has(formatPath(p)));
  return rule(doc, ctx).map((i) => `${formatPath(i.path)}: ${i.message}`);
}

const custom = (extra: CheckedDoc['spec'] = {}): CheckedDoc => ({
  metadata: { name: 'hb2' },
  spec: { cluster: { domain: 'hb2.example.test' }, network: { name: 'hb2', cidr: '10.126.2.0/24' }, ...extra },
});

describe('cross-field rules, each on its own', () => {
  it('domainHasSubnet: a custom domain without spec.network is reported; a slot domain needs none', () => {
    expect(run(domainHasSubnet, { metadata: { name: 'a' }, spec: { cluster: { domain: 'dev.example.test' } } })).toEqual([
      'spec.network: domain "dev.example.test" has no lok8s slot, so the project network must be given',
    ]);
    expect(run(domainHasSubnet, { metadata: { name: 'a' }, spec: { cluster: { domain: '50.lok8s.dev' } } })).toEqual([]);
    expect(run(domainHasSubnet, { metadata: { name: 'a' }, spec: { cluster: { domain: '300.lok8s.dev' } } })[0]).toMatch(
      /^spec\.cluster\.domain: slot 300 is out of range/,
    );
  });

  it('subnetsDoNotOverlap: the project /24 against the shared one, only while shared mirrors are on', () => {
    const doc = custom({ network: { name: 'hb2', cidr: SPEC_DEFAULTS.sharedNetwork.cidr } });
    expect(run(subnetsDoNotOverlap, doc)).toEqual([
      'spec.network.cidr: project subnet 10.125.200.0/24 overlaps the shared registry subnet 10.125.200.0/24',
    ]);
    expect(run(subnetsDoNotOverlap, { ...doc, spec: { ...doc.spec, registries: { shared: { enabled: false } } } })).toEqual([]);
  });

  it('mirrorRegistriesAreValid: the derived registry of each mirror is checked at its url', () => {
    const doc = custom({
      registries: {
        mirrors: [
          { name: 'io-a', url: 'https://a.example.test' },
          { name: 'io-b', url: 'https://a.example.test' },
          { name: 'io-c', url: 'http://lok8s.local' },
          undefined, // an item the schema rejected: skipped, the indexes still match the file
        ],
      },
    });
    expect(run(mirrorRegistriesAreValid, doc)).toEqual([
      'spec.registries.mirrors[1].url: registry "a.example.test" is already mirrored by mirrors[0]',
      `spec.registries.mirrors[2].url: "lok8s.local" is the project's own build registry and cannot be mirrored`,
    ]);
  });

  it('mirrorsFit: capacity depends on where the mirrors live', () => {
    const mirrors = Array.from({ length: 30 }, (_, i) => ({ name: `m${i}`, url: `https://r${i}.example.test` }));
    expect(run(mirrorsFit, custom({ registries: { shared: { enabled: false }, mirrors } }))).toEqual([
      'spec.registries.mirrors: 30 mirrors do not fit: the project subnet has 25 mirror addresses (.103-.127)',
    ]);
    expect(run(mirrorsFit, custom({ registries: { mirrors } }))).toEqual([]);
  });

  it('hostPortsAreValid: the schema defaults of listenAddress and protocol count for duplicates', () => {
    const doc = custom({
      nodes: {
        hostPorts: [
          { containerPort: 80, hostPort: 8080 },
          { containerPort: 81, hostPort: 8080, listenAddress: SPEC_DEFAULTS.hostPort.listenAddress, protocol: 'TCP' },
          { containerPort: 82, hostPort: 8080, protocol: 'UDP' },
        ],
      },
    });
    expect(run(hostPortsAreValid, doc)).toEqual([
      'spec.nodes.hostPorts[1].hostPort: host port 127.0.0.1:8080/TCP is already mapped by hostPorts[0]',
    ]);
  });

  it('p2pPortsDiffer: points at the port the file wrote', () => {
    const doc = custom({ registries: { p2p: { port: 4000, routerPort: 4000 } } });
    expect(run(p2pPortsDiffer, doc, { wrote: ['spec.registries.p2p.routerPort'] })).toEqual([
      'spec.registries.p2p.routerPort: routerPort 4000 is the same as p2p.port',
    ]);
    expect(run(p2pPortsDiffer, doc)).toEqual(['spec.registries.p2p.port: routerPort 4000 is the same as p2p.port']);
    const metrics = custom({ registries: { p2p: { metricsPort: 30021 } } });
    expect(run(p2pPortsDiffer, metrics, { wrote: ['spec.registries.p2p.metricsPort'] })).toEqual([
      'spec.registries.p2p.metricsPort: metricsPort 30021 is the same as p2p.routerPort',
    ]);
    const data = custom({ registries: { p2p: { dataPort: 30022 } } });
    expect(run(p2pPortsDiffer, data, { wrote: ['spec.registries.p2p.dataPort'] })).toEqual([
      'spec.registries.p2p.dataPort: dataPort 30022 is the same as p2p.metricsPort',
    ]);
  });
});

describe('defaults', () => {
  it('come from the schema', () => {
    expect(SPEC_DEFAULTS.sharedNetwork).toEqual({ name: 'lok8s-registries', cidr: '10.125.200.0/24' });
    expect(SPEC_DEFAULTS.p2p).toEqual({ port: 30020, routerPort: 30021, metricsPort: 30022, dataPort: 30023, dialTimeout: '200ms' });
    expect(SPEC_DEFAULTS.kubernetesVersion).toBe('v1.34.0');
    expect(SPEC_DEFAULTS.mirrors.map((m) => m.registry)).toEqual(['docker.io', 'quay.io', 'registry.k8s.io', 'ghcr.io']);
  });

  it('derived ones are named rules', () => {
    expect(defaultP2PEnabled({ controlPlane: 1, workers: 0 })).toBe(false);
    expect(defaultP2PEnabled({ controlPlane: 1, workers: 1 })).toBe(true);
    expect(defaultRegistryFor('io-docker', 'https://mirror.example.test')).toBe('docker.io');
    expect(defaultRegistryFor('corp', 'https://registry.example.test:5000/')).toBe('registry.example.test:5000');
    expect(defaultRegistryFor('corp', 'not a url')).toBeUndefined();
  });
});
