import type Docker from 'dockerode';
import { LoError } from '../../errors/loError.js';
import { statusOf, unless404, type DockerCalls } from './client.js';
import type { BuildSpec, ImagesClient, ImageState } from './types.js';

/** Waits for a pull or build stream; a build's error arrives as a progress entry, not as a stream error. */
function follow(docker: Docker, stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, out: Array<{ error?: string }> = []) => {
      const entry = out.find((o) => o.error);
      const failed = err ?? (entry ? new Error(entry.error) : null);
      if (failed) reject(failed);
      else resolve();
    }),
  );
}

/** Narrow client for images: resolve, pull when missing, build, list and remove what lo built. */
export class Images implements ImagesClient {
  constructor(private readonly calls: DockerCalls) {}

  async inspect(ref: string): Promise<ImageState | null> {
    return this.calls.run('inspect', `image ${ref}`, (docker) =>
      unless404(async () => {
        const info = await docker.getImage(ref).inspect();
        return { id: info.Id, tags: info.RepoTags ?? [], labels: info.Config?.Labels ?? {}, created: Date.parse(info.Created) / 1000 };
      }, null),
    );
  }

  async id(ref: string): Promise<string | null> {
    return (await this.inspect(ref))?.id ?? null;
  }

  /** The image's ID now (a tag may have moved since the last call), pulled first when missing. */
  async ensure(ref: string): Promise<string> {
    const have = await this.id(ref);
    if (have) return have;
    try {
      await this.calls.run('pull', `image ${ref}`, async (docker) => follow(docker, await docker.pull(ref)));
    } catch (err) {
      throw new LoError('E_DOCKER', `image ${ref} is not present and could not be pulled: ${(err as Error).message}`, {
        hint: `load or build ${ref} (offline: \`bash scripts/testbed.sh\` builds registry:2), or set LO_REGISTRY_IMAGE`,
        cause: err,
      });
    }
    const id = await this.id(ref);
    if (!id) throw new LoError('E_DOCKER', `image ${ref} missing after pull`);
    return id;
  }

  /**
   * Whether a path exists in an image's filesystem, without running anything from it: a container is created
   * (never started), the path looked up through Docker's archive API, and the container removed.
   */
  async hasPath(ref: string, path: string, labels: Record<string, string>): Promise<boolean> {
    return this.calls.run('inspect', `${path} in image ${ref}`, async (docker) => {
      const c = await docker.createContainer({
        Image: ref,
        Entrypoint: [path],
        Cmd: [],
        Labels: labels,
        HostConfig: { NetworkMode: 'none' },
      });
      try {
        // Not the HEAD stat: dockerode waits for a body a HEAD answer never has (see Exec.pathExists).
        const stream = (await c.getArchive({ path })) as unknown as { destroy(): void };
        stream.destroy();
        return true;
      } catch (err) {
        if (statusOf(err) === 404) return false;
        throw err;
      } finally {
        // v: the anonymous volumes Docker made for the image's VOLUMEs (registry:2: /var/lib/registry) go with it
        await c.remove({ force: true, v: true }).catch(() => undefined);
      }
    });
  }

  async build(spec: BuildSpec): Promise<void> {
    await this.calls.run('build', `image ${spec.tag}`, async (docker) =>
      follow(
        docker,
        await docker.buildImage({ context: spec.context, src: spec.src }, { t: spec.tag, rm: true, forcerm: true, labels: spec.labels }),
      ),
    );
  }

  async list(labels: string[]): Promise<ImageState[]> {
    const raw = await this.calls.run('list', `images ${labels.join(',')}`, (docker) => docker.listImages({ filters: { label: labels } }));
    return raw.map((i) => ({ id: i.Id, tags: i.RepoTags ?? [], labels: i.Labels ?? {}, created: i.Created }));
  }

  async remove(ref: string): Promise<'removed' | 'absent' | 'in-use'> {
    return this.calls.run('remove', `image ${ref}`, async (docker) => {
      try {
        await docker.getImage(ref).remove();
        return 'removed' as const;
      } catch (err) {
        const s = statusOf(err);
        if (s === 404) return 'absent' as const;
        if (s === 409) return 'in-use' as const;
        throw err;
      }
    });
  }
}
