import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyRegistries } from '../../src/apply/applyRegistries.js';
import { observeShared } from '../../src/adapters/docker/observeShared.js';
import type { ClusterSpec } from '../../src/spec/types.js';
import { diffDown, observeTargets } from '../../src/usecases/registryDown.js';
import { FakeDocker } from '../support/fakeDocker.js';
import { parse as parseYaml } from 'yaml';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { planCluster } from '../../src/plan/planCluster.js';
import type { Plan } from '../../src/plan/types.js';
import { LABELS } from '../../src/plan/labels.js';

const PATHS = { stateDir: '/state/lo', caRoot: '/state/mkcert' };
const specOf = (body = ''): ClusterSpec =>
  parseSpec(`apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: lok8s\nspec:\n${body}`, { file: 't.yaml' });
function plan(body = ''): Plan {
  return planCluster(specOf(body), { paths: PATHS });
}

describe('offline mirrors: read-only replicas (issue 11)', () => {
  it('every mirror, and only mirrors, has a replica on the same address, volume and TLS files, its own port', () => {
    const p = plan();
    for (const r of p.registries) {
      if (r.role !== 'mirror') {
        expect(r.replica).toBeUndefined();
        continue;
      }
      const rep = r.replica!;
      expect(rep.containerName).toBe(`${r.containerName}-replica`);
      expect(rep.endpoint).toBe(`https://${r.ip}:5443`);
      expect(rep.configPath).toBe(`${r.configDir}/replica.yml`);
      const cfg = parseYaml(rep.config) as Record<string, any>;
      expect(cfg.proxy).toBeUndefined();
      expect(cfg.storage.maintenance.readonly.enabled).toBe(true);
      expect(cfg.storage.filesystem.rootdirectory).toBe('/var/lib/registry');
      expect(cfg.http.addr).toBe(':5443');
      const mirrorCfg = parseYaml(r.config) as Record<string, any>;
      expect(cfg.http.tls).toEqual(mirrorCfg.http.tls);
      expect(rep.labels[LABELS.role]).toBe('replica');
      expect(rep.labels[LABELS.mirror]).toBe(r.name);
      expect(rep.labels[LABELS.specHash]).not.toBe(r.labels[LABELS.specHash]);
    }
  });

  it('without TLS the replica listens on 5080 with plain HTTP', () => {
    const p = plan('  registries:\n    tls: false\n');
    const m = p.registries.find((r) => r.role === 'mirror')!;
    expect(m.replica!.endpoint).toBe(`http://${m.ip}:5080`);
    expect((parseYaml(m.replica!.config) as Record<string, any>).http.tls).toBeUndefined();
  });

  it('no timer-driven loss: proxies refuse deletes (2.8 TTL expiry fails), build and cache still accept them', () => {
    const p = plan();
    for (const r of p.registries) {
      const cfg = parseYaml(r.config) as Record<string, any>;
      expect(cfg.storage.delete.enabled).toBe(r.role !== 'mirror');
      expect(Boolean(cfg.proxy)).toBe(r.role === 'mirror');
    }
  });

  it('the replica is recorded in plan.files with mode 0600', () => {
    const p = plan();
    const m = p.registries.find((r) => r.role === 'mirror')!;
    expect(p.files.find((f) => f.path === m.replica!.configPath)).toEqual({
      path: m.replica!.configPath,
      kind: 'registry-config',
      mode: 0o600,
    });
  });
});

describe('offline mirrors against the in-memory Docker', () => {
  const SHARED =
    '  registries:\n    tls: false\n    mirrors:\n      - name: lo-off-hub\n        url: http://10.141.12.250:5000\n        registry: docker.io\n';
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'lo-offline-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const sharedPlan = (): Plan => planCluster(specOf(SHARED), { paths: { stateDir: join(dir, 'state'), caRoot: join(dir, 'ca') } });

  it('shared observation: the address from the replica, what the mirror is from its proxy', async () => {
    const p = sharedPlan();
    const m = p.registries.find((r) => r.role === 'mirror')!;
    const fake = new FakeDocker();
    fake.addImage(m.image);
    await applyRegistries({ ...p, registries: [m] }, { docker: fake });
    // The proxy's upstream moved; the replica still carries the old label.
    const proxy = fake.container(m.containerName)!;
    fake.containerStore.get(proxy.id)!.state.labels[LABELS.upstream] = 'http://10.141.12.251:5000';
    const seen = await observeShared(fake, specOf(SHARED));
    expect(seen.mirrors).toEqual([expect.objectContaining({ name: m.name, ip: m.ip, url: 'http://10.141.12.251:5000' })]);
  });

  it('down --shared removes the proxy and its replica (the proxy is on the network only through the replica)', async () => {
    const p = sharedPlan();
    const m = p.registries.find((r) => r.role === 'mirror')!;
    const fake = new FakeDocker();
    fake.addImage(m.image);
    await applyRegistries(p, { docker: fake });
    const targets = await observeTargets(fake, p, true);
    expect(diffDown(targets).map((a) => a.name)).toEqual(expect.arrayContaining([m.containerName, m.replica!.containerName]));
    const own = await observeTargets(fake, p, false);
    expect(own.map((c) => c.name)).not.toContain(m.replica!.containerName);
  });
});
