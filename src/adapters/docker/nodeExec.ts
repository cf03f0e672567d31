import { PassThrough } from 'node:stream';
import { call, statusOf, type DockerConnection } from './client.js';
import { KIND_CLUSTER_LABEL, KIND_ROLE_LABEL } from './inspectKindNodes.js';

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs commands inside containers (kind nodes) and looks at their files, for `lo why` and `lo doctor`:
 * what containerd in a node sees is only visible from inside it (its 127.0.0.1, its certs.d, its config).
 */
export class NodeExec {
  constructor(private readonly conn: DockerConnection) {}

  /** Runs `cmd` in a running container; the output is bounded to 4 MiB per stream. */
  async exec(container: string, cmd: string[], opts: { timeoutMs?: number } = {}): Promise<ExecResult> {
    const { docker } = this.conn;
    return call(this.conn, `exec in ${container}`, async () => {
      const exec = await docker.getContainer(container).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
      const stream = await exec.start({ hijack: true, stdin: false });
      const out = new PassThrough();
      const err = new PassThrough();
      const chunks = { out: [] as Buffer[], err: [] as Buffer[] };
      const limit = 4 << 20;
      let sizes = { out: 0, err: 0 };
      out.on('data', (b: Buffer) => {
        if ((sizes = { ...sizes, out: sizes.out + b.length }).out <= limit) chunks.out.push(b);
      });
      err.on('data', (b: Buffer) => {
        if ((sizes = { ...sizes, err: sizes.err + b.length }).err <= limit) chunks.err.push(b);
      });
      docker.modem.demuxStream(stream, out, err);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          stream.destroy();
          reject(new Error(`\`${cmd.join(' ')}\` in ${container} took over ${opts.timeoutMs ?? 30_000} ms`));
        }, opts.timeoutMs ?? 30_000);
        stream.on('end', () => {
          clearTimeout(timer);
          resolve();
        });
        stream.on('close', () => {
          clearTimeout(timer);
          resolve();
        });
        stream.on('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
      });
      const info = await exec.inspect();
      return {
        exitCode: info.ExitCode ?? -1,
        stdout: Buffer.concat(chunks.out).toString('utf8'),
        stderr: Buffer.concat(chunks.err).toString('utf8'),
      };
    });
  }

  /** Whether a path exists in a container's filesystem (Docker's archive stat: no shell needed in the image). */
  async pathExists(container: string, path: string): Promise<boolean> {
    try {
      await this.conn.docker.getContainer(container).infoArchive({ path });
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw err;
    }
  }

  /** A kind cluster's nodes that pull images (kind's labels; the HA load balancer is left out), sorted. */
  async kindNodes(cluster: string): Promise<Array<{ name: string; role: string; running: boolean }>> {
    const list = await call(this.conn, `list the nodes of kind cluster ${cluster}`, () =>
      this.conn.docker.listContainers({ all: true, filters: { label: [`${KIND_CLUSTER_LABEL}=${cluster}`] } }),
    );
    return list
      .map((c) => ({
        name: (c.Names[0] ?? '').replace(/^\//, ''),
        role: c.Labels?.[KIND_ROLE_LABEL] ?? 'unknown',
        running: c.State === 'running',
      }))
      .filter((n) => n.role !== 'external-load-balancer')
      .sort((a, b) => (a.role === b.role ? a.name.localeCompare(b.name) : a.role === 'control-plane' ? -1 : 1));
  }
}
