import { unless404, type DockerCalls } from './client.js';
import type { VolumesClient, VolumeState } from './types.js';

/** Narrow client for volumes. Docker's volume create is itself idempotent (same name returns the volume). */
export class Volumes implements VolumesClient {
  constructor(private readonly calls: DockerCalls) {}

  async inspect(name: string): Promise<VolumeState | null> {
    return this.calls.run('inspect', `volume ${name}`, (docker) =>
      unless404(async () => {
        const v = (await docker.getVolume(name).inspect()) as { Name: string; Labels?: Record<string, string> | null };
        return { name: v.Name, labels: v.Labels ?? {} };
      }, null),
    );
  }

  async ensure(name: string, labels: Record<string, string>): Promise<{ state: VolumeState; created: boolean }> {
    const existing = await this.inspect(name);
    if (existing) return { state: existing, created: false };
    await this.calls.run('create', `volume ${name}`, (docker) => docker.createVolume({ Name: name, Labels: labels }));
    return { state: { name, labels }, created: true };
  }

  async remove(name: string): Promise<boolean> {
    return this.calls.run('remove', `volume ${name}`, (docker) =>
      unless404(async () => {
        await docker.getVolume(name).remove();
        return true;
      }, false),
    );
  }

  async list(labels: string[]): Promise<VolumeState[]> {
    const res = await this.calls.run('list', `volumes ${labels.join(',')}`, (docker) => docker.listVolumes({ filters: { label: labels } }));
    return (res.Volumes ?? []).map((v) => ({ name: v.Name, labels: (v.Labels as Record<string, string> | null) ?? {} }));
  }

  /** From Docker's disk-usage report (`docker system df -v`), measured by the engine. */
  async usage(): Promise<Map<string, number>> {
    const df = (await this.calls.run('get', 'disk usage', (docker) => docker.df())) as {
      Volumes?: Array<{ Name: string; UsageData?: { Size?: number } | null }> | null;
    };
    return new Map((df.Volumes ?? []).map((v) => [v.Name, v.UsageData?.Size ?? -1]));
  }
}
