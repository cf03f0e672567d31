/**
 * Pulls the way a kubelet pulls: the CRI `runtime.v1.ImageService` (PullImage, ImageStatus, ListImages,
 * RemoveImage) over a node container's containerd socket, so containerd follows its
 * /etc/containerd/config.toml (kind's base config with lo's containerdConfigPatches) and not a `--hosts-dir`
 * given on a command line. The node's socket lives on the node's own /run; a local unix socket bridges each
 * gRPC connection to it through `docker exec -i <node> node` (the node image carries node), so this works
 * wherever the Docker engine is. The proto subset is test/fixtures/proto/cri-api.proto.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { REPO_ROOT } from './docker.js';

const PROTO = join(REPO_ROOT, 'test', 'fixtures', 'proto', 'cri-api.proto');
const NODE_SOCKET = '/run/containerd/containerd.sock';
// Runs inside the node: one connection to containerd's socket, spliced to stdin/stdout.
const SPLICE = `const s=require('net').connect(${JSON.stringify(NODE_SOCKET)});process.stdin.pipe(s);s.pipe(process.stdout);s.on('error',e=>{process.stderr.write(String(e));process.exit(1)});s.on('close',()=>process.exit(0));process.stdin.on('end',()=>s.end())`;

export interface CriImage {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  size: number;
}

export interface CriClient {
  /** PullImage; resolves with the image ref containerd returns (the image id). */
  pull(ref: string, timeoutMs?: number): Promise<string>;
  /** ImageStatus; undefined when the node does not have the image. */
  status(ref: string): Promise<CriImage | undefined>;
  list(): Promise<CriImage[]>;
  remove(ref: string): Promise<void>;
  close(): void;
}

type Unary = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: any) => void) => void;

let pkgCache: any;
function imageServiceCtor(): grpc.ServiceClientConstructor {
  pkgCache ??= grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { longs: Number, defaults: true, keepCase: false }));
  return pkgCache.runtime.v1.ImageService;
}

function bridge(node: string, path: string): Promise<Server> {
  const children = new Set<ReturnType<typeof spawn>>();
  const server = createServer((conn: Socket) => {
    const child = spawn('docker', ['exec', '-i', node, 'node', '-e', SPLICE], { stdio: ['pipe', 'pipe', 'ignore'] });
    children.add(child);
    conn.pipe(child.stdin);
    child.stdout.pipe(conn);
    const end = () => {
      conn.destroy();
      child.kill();
      children.delete(child);
    };
    child.on('exit', end);
    child.on('error', end);
    conn.on('close', end);
    conn.on('error', end);
  });
  server.on('close', () => children.forEach((c) => c.kill()));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve(server));
  });
}

function toImage(i: any): CriImage {
  return { id: i.id, repoTags: i.repoTags ?? [], repoDigests: i.repoDigests ?? [], size: Number(i.size ?? 0) };
}

/** A CRI ImageService client for one node container. Close it when done. */
export async function criClient(node: string): Promise<CriClient> {
  const dir = mkdtempSync(join(tmpdir(), 'lo-cri-'));
  const sock = join(dir, 'cri.sock');
  const server = await bridge(node, sock);
  const Ctor = imageServiceCtor();
  const client = new Ctor(`unix://${sock}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'localhost' }) as grpc.Client &
    Record<string, Unary>;
  const call = <T>(method: string, req: unknown, timeoutMs = 30_000): Promise<T> =>
    new Promise((resolve, reject) =>
      client[method]!.call(client, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) =>
        err ? reject(err) : resolve(res as T),
      ),
    );
  return {
    async pull(ref, timeoutMs = 120_000) {
      const res = await call<{ imageRef: string }>('PullImage', { image: { image: ref } }, timeoutMs);
      return res.imageRef;
    },
    async status(ref) {
      const res = await call<{ image?: any }>('ImageStatus', { image: { image: ref } });
      return res.image ? toImage(res.image) : undefined;
    },
    async list() {
      const res = await call<{ images: any[] }>('ListImages', {});
      return (res.images ?? []).map(toImage);
    },
    async remove(ref) {
      await call('RemoveImage', { image: { image: ref } });
    },
    close() {
      client.close();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * One CRI PullImage in a node, shaped like a command result: code 0 and the image ref, or code 1 and the
 * gRPC error (containerd's message names the hosts it tried). Never throws.
 */
export async function criPull(node: string, ref: string, timeoutMs = 120_000): Promise<{ code: number; out: string; imageRef?: string }> {
  let cri: CriClient | undefined;
  try {
    cri = await criClient(node);
    const imageRef = await cri.pull(ref, timeoutMs);
    return { code: 0, out: `${ref} ${imageRef}`, imageRef };
  } catch (err) {
    return { code: 1, out: String((err as Error).message ?? err) };
  } finally {
    cri?.close();
  }
}
