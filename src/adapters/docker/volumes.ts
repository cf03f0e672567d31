import { call, dockerError, statusOf, type DockerConnection } from './client.js';

export interface VolumeState {
  name: string;
  labels: Record<string, string>;
}

/** Narrow client for volumes. Docker's volume create is itself idempotent (same name returns the volume). */
export class Volumes {
  constructor(private readonly conn: DockerConnection) {}

  async inspect(name: string): Promise<VolumeState | null> {
    try {
      const v = (await this.conn.docker.getVolume(name).inspect()) as { Name: string; Labels?: Record<string, string> | null };
      return { name: v.Name, labels: v.Labels ?? {} };
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw dockerError(`inspecting volume ${name}`, err, this.conn.target);
    }
  }

  /** Creates the volume unless it exists; `created` says whether this call made it. */
  async ensure(name: string, labels: Record<string, string>): Promise<{ state: VolumeState; created: boolean }> {
    const existing = await this.inspect(name);
    if (existing) return { state: existing, created: false };
    await call(this.conn, `creating volume ${name}`, () => this.conn.docker.createVolume({ Name: name, Labels: labels }));
    return { state: { name, labels }, created: true };
  }

  /** Removes the volume; absent is fine (false). A volume still in use is an error. */
  async remove(name: string): Promise<boolean> {
    try {
      await this.conn.docker.getVolume(name).remove();
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw dockerError(`removing volume ${name}`, err, this.conn.target);
    }
  }

  async list(labels: string[]): Promise<VolumeState[]> {
    const res = await call(this.conn, 'listing volumes', () => this.conn.docker.listVolumes({ filters: { label: labels } }));
    return (res.Volumes ?? []).map((v) => ({ name: v.Name, labels: (v.Labels as Record<string, string> | null) ?? {} }));
  }

  /**
   * Bytes used per named volume, from Docker's disk-usage report (`docker system df -v`): the engine measures
   * it, so it works where the volume's directory is not visible to lo (Docker Desktop, a remote engine).
   */
  async usage(): Promise<Map<string, number>> {
    const df = (await call(this.conn, 'reading disk usage', () => this.conn.docker.df())) as {
      Volumes?: Array<{ Name: string; UsageData?: { Size?: number } | null }> | null;
    };
    return new Map((df.Volumes ?? []).map((v) => [v.Name, v.UsageData?.Size ?? -1]));
  }
}
