import { join } from 'node:path';
import type { CertificatePlan, ContainerdPlan, FilePlan, RegistryPlan } from './types.js';

/** Every file provisioning writes, with its mode (secrets and keys 0600). */
export function planFiles(o: {
  tls: boolean;
  p2p: { enabled: boolean; keyPath: string };
  containerd: ContainerdPlan;
  registries: readonly RegistryPlan[];
  certificates: readonly CertificatePlan[];
  kindConfigPath: string;
}): FilePlan[] {
  return [
    ...o.containerd.hosts.map((h) => ({ path: h.path, kind: 'hosts.toml' as const, mode: h.mode })),
    ...o.containerd.files.map((f) => ({
      path: f.path,
      kind: f.path.endsWith('.key') ? ('key' as const) : f.path.endsWith('ca.crt') ? ('ca' as const) : ('certificate' as const),
      mode: f.mode,
    })),
    ...(o.tls ? [{ path: join(o.containerd.certsDir, '_lo', 'ca.crt'), kind: 'ca' as const, mode: 0o644 }] : []),
    ...o.registries.flatMap((r) => [
      { path: r.configPath, kind: 'registry-config' as const, mode: 0o600 },
      ...(r.replica
        ? [
            { path: r.replica.configPath, kind: 'registry-config' as const, mode: 0o600 },
            { path: r.replica.supervisorPath, kind: 'registry-config' as const, mode: 0o600 },
          ]
        : []),
    ]),
    ...o.certificates.flatMap((c) => [
      { path: c.certPath, kind: 'certificate' as const, mode: 0o644 },
      { path: c.keyPath, kind: 'key' as const, mode: 0o600 },
    ]),
    ...(o.p2p.enabled ? [{ path: o.p2p.keyPath, kind: 'p2p-key' as const, mode: 0o600 }] : []),
    { path: o.kindConfigPath, kind: 'kind-config' as const, mode: 0o644 },
  ];
}
