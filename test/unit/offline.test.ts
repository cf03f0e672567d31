import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { planCluster } from '../../src/plan/planCluster.js';
import type { Plan } from '../../src/plan/types.js';
import { LABELS } from '../../src/plan/labels.js';

const PATHS = { stateDir: '/state/lo', caRoot: '/state/mkcert' };
function plan(body = ''): Plan {
  const s = parseSpec(`apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: lok8s\nspec:\n${body}`, { file: 't.yaml' });
  return planCluster(s, { paths: PATHS });
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
