import { LoError } from '../../errors/loError.js';
import { call, dockerError, statusOf, type DockerConnection } from './client.js';

/** Narrow client for images: resolve a reference to its ID, pulling only when it is not present. */
export class Images {
  constructor(private readonly conn: DockerConnection) {}

  async id(ref: string): Promise<string | null> {
    try {
      const info = await this.conn.docker.getImage(ref).inspect();
      return info.Id;
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw dockerError(`inspecting image ${ref}`, err, this.conn.target);
    }
  }

  /** The image's ID now (a tag may have moved since the last call), pulled first when missing. */
  async ensure(ref: string): Promise<string> {
    return this.ensureOnce(ref);
  }

  private async ensureOnce(ref: string): Promise<string> {
    const have = await this.id(ref);
    if (have) return have;
    try {
      const stream = await this.conn.docker.pull(ref);
      await new Promise<void>((resolve, reject) =>
        this.conn.docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())),
      );
    } catch (err) {
      throw new LoError('E_DOCKER', `image ${ref} is not present and could not be pulled: ${(err as Error).message}`, {
        hint: `load or build ${ref} (offline: \`bash scripts/testbed.sh\` builds registry:2), or set LO_REGISTRY_IMAGE`,
        cause: err,
      });
    }
    const id = await call(this.conn, `inspecting image ${ref}`, () => this.id(ref));
    if (!id) throw new LoError('E_DOCKER', `image ${ref} missing after pull`);
    return id;
  }
}
