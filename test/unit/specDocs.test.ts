import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { specSchema } from '../../src/spec/schema.js';
import { ConfigError, formatIssue } from '../../src/errors/loError.js';
import { planCluster } from '../../src/plan/planCluster.js';
import type { Plan } from '../../src/plan/types.js';

const docPromise = readFile(new URL('../../docs/spec.md', import.meta.url), 'utf8');

/** The ```yaml blocks of docs/spec.md that are whole spec files. */
async function examples(): Promise<string[]> {
  const doc = await docPromise;
  return [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((t) => t.includes('apiVersion:'));
}
function planOf(text: string): Plan {
  return planCluster(parseSpec(text, { file: 'doc.yaml' }), { paths: { stateDir: '/s', caRoot: '/c' } });
}

function schemaPaths(node: any, path = '', out: string[] = []): string[] {
  for (const [k, child] of Object.entries<any>(node.properties ?? {})) {
    const p = path ? `${path}.${k}` : k;
    out.push(p);
    schemaPaths(child, p, out);
    if (child.items) schemaPaths(child.items, `${p}[]`, out);
  }
  return out;
}

describe('docs/spec.md', () => {
  it('has a reference row for every schema field', async () => {
    const doc = await docPromise;
    const missing = schemaPaths(specSchema).filter((p) => !doc.includes(`| \`${p}\` |`));
    expect(missing).toEqual([]);
  });

  it('the 50.lok8s.dev example plans as the text says', async () => {
    const text = (await examples()).find((t) => t.includes('domain: 50.lok8s.dev'))!;
    const p = planOf(text);
    const ip = (n: string) => p.registries.find((r) => r.name === n)!;
    expect([ip('build').ip, ip('cache').ip, ip('build').network]).toEqual(['10.125.50.101', '10.125.50.102', 'team-a']);
    expect(['io-docker', 'io-quay', 'io-k8s', 'io-ghcr', 'corp'].map((n) => ip(n).ip)).toEqual([
      '10.125.200.2',
      '10.125.200.3',
      '10.125.200.4',
      '10.125.200.5',
      '10.125.200.6',
    ]);
    expect(ip('corp')).toMatchObject({
      containerName: 'lok8s-registry-corp',
      registry: 'registry.corp.example:5000',
      credentials: { usernameEnv: 'CORP_REGISTRY_USER', passwordEnv: 'CORP_REGISTRY_TOKEN' },
    });
    expect(p.p2p.enabled).toBe(true);
  });

  it('the custom-domain example plans as the text says', async () => {
    const text = (await examples()).find((t) => t.includes('domain: dev.example.test'))!;
    const p = planOf(text);
    expect(p.registries.map((r) => [r.containerName, r.endpoint, r.registry ?? null])).toEqual([
      ['example-net-registry-build', 'http://10.126.8.101', null],
      ['example-net-registry-cache', 'http://10.126.8.102', null],
      ['example-net-mirror-io-docker', 'http://10.126.8.103', 'docker.io'],
      ['example-net-mirror-internal', 'http://10.126.8.104', 'images.example.test'],
    ]);
    expect(p.registries.every((r) => r.port === 80)).toBe(true);
    expect(p.containerd.hosts.find((h) => h.host === 'docker.io')!.content).not.toContain('registry-1.docker.io');
  });

  it('every other example is valid, the built-in default as shown included', async () => {
    const all = await examples();
    expect(all.length).toBeGreaterThanOrEqual(5);
    for (const t of all.filter((x) => !x.includes('050.lok8s.dev'))) expect(() => parseSpec(t, { file: 'doc.yaml' })).not.toThrow();
  });

  it('the error example is what lo prints for that file', async () => {
    const doc = await docPromise;
    const text = (await examples()).find((t) => t.includes('050.lok8s.dev'))!;
    let err: ConfigError | undefined;
    try {
      parseSpec(text, { file: '/home/me/team-a.yaml' });
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(doc).toContain(`error ${err!.message}\n`);
    for (const i of err!.issues) expect(doc).toContain(`  - ${formatIssue(i)}`);
  });
});
