import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DockerClients } from '../adapters/docker/index.js';
import { AGENT_IMAGE_ROLE, LABELS, MANAGED_BY } from '../plan/labels.js';
import { LO_VERSION } from '../version.js';
import { PUBLIC_MODE, writeFileAtomic } from './files.js';

export const AGENT_IMAGE_REPO = 'lo-p2p-agent';
/** Base with node 20 at /usr/local/bin/node; offline test beds pass a local image that has it (lo-test/node). */
export const DEFAULT_AGENT_BASE = 'node:20-bookworm-slim';

export interface AgentImageOptions {
  baseImage?: string;
  /** The lo package directory (default: this installation). */
  root?: string;
  extraLabels?: Record<string, string>;
}

function packageRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

/** Directories of the runtime dependency closure (package.json `dependencies`, recursively, node resolution). */
export function runtimePackages(root: string): string[] {
  const seen = new Set<string>();
  const visit = (fromDir: string, name: string): void => {
    for (let dir = fromDir; ; dir = dirname(dir)) {
      const cand = join(dir, 'node_modules', name);
      if (existsSync(join(cand, 'package.json'))) {
        if (seen.has(cand)) return;
        seen.add(cand);
        const pkg = JSON.parse(readFileSync(join(cand, 'package.json'), 'utf8')) as {
          dependencies?: Record<string, string>;
          optionalDependencies?: Record<string, string>;
        };
        for (const d of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) visit(cand, d);
        return;
      }
      if (dir === root || dirname(dir) === dir) return; // optional dependency not installed
    }
  };
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  for (const d of Object.keys(pkg.dependencies ?? {})) visit(root, d);
  return [...seen].sort();
}

/** What the published package holds (package.json `files`), plus the containerd protos the agent loads. */
function packageParts(root: string): string[] {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { files?: string[] };
  const parts = new Set(['package.json', ...(pkg.files ?? ['bin', 'dist']), join('src', 'agent', 'proto')]);
  return [...parts].filter((p) => existsSync(join(root, p)));
}

function hashTree(h: ReturnType<typeof createHash>, dir: string, root: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) hashTree(h, p, root);
    else if (e.isFile()) h.update(`${relative(root, p)}\n`).update(readFileSync(p));
  }
}

/**
 * Builds (when missing or stale) the agent image: the base image plus lo's dist, bin, the containerd protos
 * and the runtime node_modules, entrypoint `lo`. Returns the image reference. Idempotent by content hash.
 */
export async function ensureAgentImage(
  docker: Pick<DockerClients, 'images'>,
  opts: AgentImageOptions = {},
): Promise<{ image: string; built: boolean }> {
  const root = opts.root ?? packageRoot();
  const base = opts.baseImage ?? DEFAULT_AGENT_BASE;
  const pkgs = runtimePackages(root);
  const h = createHash('sha256').update(`${base}\n${LO_VERSION}\n`);
  const parts = packageParts(root);
  for (const d of parts) {
    if (statSync(join(root, d)).isDirectory()) hashTree(h, join(root, d), root);
    else h.update(readFileSync(join(root, d)));
  }
  for (const p of pkgs)
    h.update(`${relative(root, p)} ${(JSON.parse(readFileSync(join(p, 'package.json'), 'utf8')) as { version: string }).version}\n`);
  const hash = h.digest('hex').slice(0, 12);
  const image = `${AGENT_IMAGE_REPO}:${LO_VERSION}-${hash}`;
  if ((await docker.images.inspect(image))?.labels[LABELS.contentHash] === hash) return { image, built: false };
  const ctx = await mkdtemp(join(tmpdir(), 'lo-agent-image-'));
  try {
    const dst = join(ctx, 'lo');
    for (const d of parts) await cp(join(root, d), join(dst, d), { recursive: true });
    for (const p of pkgs) {
      await cp(p, join(dst, relative(root, p)), {
        recursive: true,
        // nested node_modules are copied as their own entries of the closure
        filter: (src) => !relative(p, src).startsWith('node_modules'),
      });
    }
    const labels = {
      [LABELS.managedBy]: MANAGED_BY,
      [LABELS.role]: AGENT_IMAGE_ROLE,
      [LABELS.version]: LO_VERSION,
      [LABELS.contentHash]: hash,
      ...(opts.extraLabels ?? {}),
    };
    await writeFileAtomic(
      join(ctx, 'Dockerfile'),
      [
        `FROM ${base}`,
        'COPY lo /opt/lo',
        ...Object.entries(labels).map(([k, v]) => `LABEL ${JSON.stringify(k)}=${JSON.stringify(v)}`),
        'ENTRYPOINT ["/usr/local/bin/node", "/opt/lo/bin/lo.js"]',
        'CMD ["p2p", "agent"]',
        '',
      ].join('\n'),
      PUBLIC_MODE,
    );
    await docker.images.build({ context: ctx, src: ['Dockerfile', 'lo'], tag: image, labels });
    await removeStaleAgentImages(docker, hash);
    return { image, built: true };
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
}

/**
 * Each lo version or content change builds a new agent image; older ones lo built are removed unless a
 * container still uses them (Docker answers 409 then, and the image stays until its agents are replaced).
 */
async function removeStaleAgentImages(docker: Pick<DockerClients, 'images'>, keepHash: string): Promise<void> {
  const images = await docker.images.list([`${LABELS.managedBy}=${MANAGED_BY}`, `${LABELS.role}=${AGENT_IMAGE_ROLE}`]);
  for (const i of images) {
    if (i.labels[LABELS.contentHash] === keepHash) continue;
    for (const tag of i.tags) await docker.images.remove(tag);
  }
}
