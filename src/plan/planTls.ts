import { join } from 'node:path';
import type { CertificatePlan, RegistryPlan, TlsPlan } from './types.js';

/**
 * One leaf for the project covering every name of the plan; each shared mirror has its own leaf in the
 * per-user state dir, since it serves every project.
 */
export function planTls(
  enabled: boolean,
  dirs: { projectDir: string; sharedDir: string; caRoot: string },
  registries: readonly RegistryPlan[],
): TlsPlan {
  const subjectNames = uniqueSorted(registries.flatMap((r) => [r.ip, ...r.hostnames, ...(r.registry ? [sanOf(r.registry)] : [])]));
  const certificates: CertificatePlan[] = [];
  if (enabled) {
    const tlsDirProject = join(dirs.projectDir, 'tls');
    const tlsDirShared = join(dirs.sharedDir, 'tls');
    certificates.push({
      id: 'project',
      scope: 'project',
      certPath: join(tlsDirProject, 'registry.crt'),
      keyPath: join(tlsDirProject, 'registry.key'),
      names: subjectNames,
      usedBy: registries.filter((r) => r.certificateId === 'project').map((r) => r.containerName),
    });
    for (const r of registries.filter((x) => x.scope === 'shared')) {
      certificates.push({
        id: `shared-${r.name}`,
        scope: 'shared',
        certPath: join(tlsDirShared, `${r.name}.crt`),
        keyPath: join(tlsDirShared, `${r.name}.key`),
        names: uniqueSorted([r.ip, sanOf(r.registry!)]),
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

/** A certificate names hosts, not ports: `registry.corp.test:5000` -> `registry.corp.test`. */
function sanOf(registry: string): string {
  return registry.replace(/:[0-9]+$/, '');
}

function uniqueSorted(values: string[]): string[] {
  return [...new Set(values)].sort();
}
