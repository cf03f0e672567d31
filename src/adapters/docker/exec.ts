import { PassThrough } from 'node:stream';
import { statusOf, type DockerCalls } from './client.js';
import type { ExecClient, ExecResult } from './types.js';

const MAX_OUTPUT = 4 << 20;

/** Collects a stream's bytes up to a bound (a runaway command must not fill lo's memory). */
function collect(stream: PassThrough): () => string {
  const chunks: Buffer[] = [];
  let size = 0;
  stream.on('data', (b: Buffer) => {
    size += b.length;
    if (size <= MAX_OUTPUT) chunks.push(b);
  });
  return () => Buffer.concat(chunks).toString('utf8');
}

/**
 * Commands and file checks inside containers (kind nodes), for `lo why` and `lo doctor`: what containerd in a
 * node sees is only visible from inside it (its 127.0.0.1, its certs.d, its config).
 */
export class Exec implements ExecClient {
  constructor(private readonly calls: DockerCalls) {}

  exec(container: string, cmd: string[], opts: { timeoutMs?: number } = {}): Promise<ExecResult> {
    const timeoutMs = opts.timeoutMs ?? 30_000;
    return this.calls.run('exec', `\`${cmd.join(' ')}\` in ${container}`, async (docker) => {
      const exec = await docker.getContainer(container).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
      const stream = await exec.start({ hijack: true, stdin: false });
      const out = new PassThrough();
      const err = new PassThrough();
      const stdout = collect(out);
      const stderr = collect(err);
      docker.modem.demuxStream(stream, out, err);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          stream.destroy();
          reject(new Error(`took over ${timeoutMs} ms`));
        }, timeoutMs);
        const done = (e?: Error): void => {
          clearTimeout(timer);
          if (e) reject(e);
          else resolve();
        };
        stream.on('end', () => done());
        stream.on('close', () => done());
        stream.on('error', done);
      });
      const info = await exec.inspect();
      return { exitCode: info.ExitCode ?? -1, stdout: stdout(), stderr: stderr() };
    });
  }

  pathExists(container: string, path: string): Promise<boolean> {
    // Docker's archive API works in images without a shell (registry:2). Not its HEAD stat: dockerode waits
    // for a body that a HEAD answer never has, so a path that exists would hang; open the GET and drop it.
    return this.calls.run('inspect', `${path} in ${container}`, async (docker) => {
      try {
        const stream = (await docker.getContainer(container).getArchive({ path })) as unknown as NodeJS.ReadableStream & {
          destroy(): void;
        };
        stream.destroy();
        return true;
      } catch (err) {
        if (statusOf(err) === 404) return false;
        throw err;
      }
    });
  }
}
