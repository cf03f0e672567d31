import { join } from 'node:path';
import type { CertificatePlan, RegistryPlan, TlsPlan } from './types.js';

/**
 * One leaf for the project; each shared mirror has its own leaf in the per-user state dir, since it serves
 * every project. Leaves name only what lo serves: its registries' IPs and its own host names (lok8s.local,
 * lok8s.cache). Never a mirrored registry's real name (docker.io, quay.io, a corporate host): containerd
 * reaches every mirror by IP (hosts.toml), so such a name would only let the key impersonate that registry.
 */
export function planTls(
  enabled: boolean,
  dirs: { projectDir: string; sharedDir: string; caRoot: string },
  registries: readonly RegistryPlan[],
): TlsPlan {
  const namesOf = (rs: readonly RegistryPlan[]): string[] => uniqueSorted(rs.flatMap((r) => [r.ip, ...r.hostnames]));
  const subjectNames = namesOf(registries);
  const certificates: CertificatePlan[] = [];
  if (enabled) {
    const tlsDirProject = join(dirs.projectDir, 'tls');
    const tlsDirShared = join(dirs.sharedDir, 'tls');
    const onProject = registries.filter((r) => r.certificateId === 'project');
    certificates.push({
      id: 'project',
      scope: 'project',
      certPath: join(tlsDirProject, 'registry.crt'),
      keyPath: join(tlsDirProject, 'registry.key'),
      // Only the registries that serve it: the project key cannot stand in for a shared mirror.
      names: namesOf(onProject),
      usedBy: onProject.map((r) => r.containerName),
    });
    for (const r of registries.filter((x) => x.scope === 'shared')) {
      certificates.push({
        id: `shared-${r.name}`,
        scope: 'shared',
        certPath: join(tlsDirShared, `${r.name}.crt`),
        keyPath: join(tlsDirShared, `${r.name}.key`),
        names: [r.ip],
        usedBy: [r.containerName],
      });
    }
  }
  return {
    enabled,
    caRoot: dirs.caRoot,
    caCertPath: join(dirs.caRoot, 'rootCA.pem'),
    caKeyPath: join(dirs.caRoot, 'rootCA-key.pem'),
    subjectNames: enabled ? subjectNames : [],
    certificates,
  };
}

function uniqueSorted(values: string[]): string[] {
  return [...new Set(values)].sort();
}
