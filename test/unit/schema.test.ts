import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { specSchema } from '../../src/spec/schema.js';

/** Fields whose default is derived from other fields (so the schema cannot hold a constant) or that are required. */
const DERIVED = new Set([
  'spec.cluster.domain',
  'spec.network',
  'spec.registries.mirrors[].registry',
  'spec.registries.mirrors[].credentials',
  'spec.registries.mirrors[].credentials.usernameEnv',
  'spec.registries.mirrors[].credentials.passwordEnv',
  'spec.registries.mirrors[].credentials.tokenEnv',
  'spec.registries.mirrors[].tls',
  'spec.registries.mirrors[].tls.caFile',
  'spec.registries.mirrors[].tls.certFile',
  'spec.registries.mirrors[].tls.keyFile',
  'spec.registries.p2p.enabled',
  'spec.registries.cache.maxSize',
]);

interface Field {
  path: string;
  node: Record<string, any>;
  required: boolean;
}

function fields(node: Record<string, any>, path: string, out: Field[] = []): Field[] {
  const required = new Set<string>(node.required ?? []);
  for (const [key, child] of Object.entries<Record<string, any>>(node.properties ?? {})) {
    const p = path ? `${path}.${key}` : key;
    out.push({ path: p, node: child, required: required.has(key) });
    fields(child, p, out);
    if (child.items) {
      out.push({ path: `${p}[]`, node: child.items, required: true });
      fields(child.items, `${p}[]`, out);
    }
  }
  return out;
}

describe('schemas/cluster.lok8s.schema.json', () => {
  const all = fields(specSchema, '');

  it('covers the whole spec', () => {
    const paths = all.map((f) => f.path);
    for (const p of [
      'apiVersion',
      'kind',
      'metadata.name',
      'spec.cluster.domain',
      'spec.kubernetes.version',
      'spec.network.name',
      'spec.network.cidr',
      'spec.nodes.controlPlane',
      'spec.nodes.workers',
      'spec.nodes.hostPorts',
      'spec.nodes.maxConcurrentDownloads',
      'spec.registries.tls',
      'spec.registries.shared.enabled',
      'spec.registries.shared.network.name',
      'spec.registries.shared.network.cidr',
      'spec.registries.mirrors[].name',
      'spec.registries.mirrors[].url',
      'spec.registries.mirrors[].registry',
      'spec.registries.mirrors[].credentials.usernameEnv',
      'spec.registries.p2p.enabled',
      'spec.registries.p2p.port',
    ])
      expect(paths).toContain(p);
  });

  it('describes every field', () => {
    const missing = all.filter((f) => typeof f.node.description !== 'string' || f.node.description.length < 8).map((f) => f.path);
    expect(missing).toEqual([]);
  });

  it('gives a default for every optional field, or says how it is derived', () => {
    const optional = all.filter((f) => !f.required && f.path !== 'apiVersion' && f.path !== 'kind');
    const missing = optional.filter((f) => f.node.default === undefined && !DERIVED.has(f.path)).map((f) => f.path);
    expect(missing).toEqual([]);
    for (const f of all.filter((x) => DERIVED.has(x.path))) expect(f.node.description).toMatch(/Default/);
  });

  it('has the documented defaults', () => {
    const at = (p: string) => all.find((f) => f.path === p)!.node.default;
    expect(at('spec.kubernetes.version')).toBe('v1.34.0');
    expect(at('spec.nodes.controlPlane')).toBe(1);
    expect(at('spec.nodes.workers')).toBe(0);
    expect(at('spec.registries.tls')).toBe(true);
    expect(at('spec.registries.shared.enabled')).toBe(true);
    expect(at('spec.registries.shared.network.name')).toBe('lok8s-registries');
    expect(at('spec.registries.shared.network.cidr')).toBe('10.125.200.0/24');
    expect(at('spec.registries.mirrors').map((m: { name: string }) => m.name)).toEqual(['io-docker', 'io-quay', 'io-k8s', 'io-ghcr']);
  });

  it('is the file the built-in default points editors at', async () => {
    const onDisk = JSON.parse(await readFile(new URL('../../schemas/cluster.lok8s.schema.json', import.meta.url), 'utf8'));
    expect(onDisk).toEqual(specSchema);
  });
});
