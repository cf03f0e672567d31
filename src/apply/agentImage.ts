import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DockerClients } from '../adapters/docker/index.js';
import { LoError } from '../errors/loError.js';
import { AGENT_IMAGE_ROLE, LABELS, MANAGED_BY } from '../plan/labels.js';
import { PUBLIC_MODE, writeFileAtomic } from './files.js';

export const AGENT_IMAGE_REPO = 'lo-p2p-agent';
/** Base with node 20 at /usr/local/bin/node; offline test beds pass a local image that has it (lo-test/node). */
export const DEFAULT_AGENT_BASE = 'node:20-bookworm-slim';
/** The agent's own build output in the package (scripts/bundle.js, agentBundle): all the image copies. */
export const AGENT_BUNDLE_DIR = join('dist', 'bundle', 'agent');
const AGENT_ENTRY = 'agent.mjs';
/** Where the image holds it. */
const IN_IMAGE = '/opt/lo-agent';
/** Unused agent images a build leaves (besides the one it built): other checkouts' and versions' stay cached. */
export const KEEP_UNUSED_AGENT_IMAGES = 3;

export interface AgentImageOptions {
  baseImage?: string;
  /** The lo package directory (default: this installation). */
  root?: string;
  extraLabels?: Record<string, string>;
}

function packageRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

/** Every file under `dir`, as sorted paths relative to it. */
function filesUnder(dir: string, at = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(dir, at), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const rel = at ? join(at, e.name) : e.name;
    if (e.isDirectory()) out.push(...filesUnder(dir, rel));
    else if (e.isFile()) out.push(rel);
  }
  return out;
}

/** The image's Dockerfile without its labels (they carry the hash itself): part of what the hash covers. */
function dockerfileBody(base: string): string[] {
  return [
    `FROM ${base}`,
    `COPY agent ${IN_IMAGE}`,
    `ENTRYPOINT ${JSON.stringify(['/usr/local/bin/node', `${IN_IMAGE}/${AGENT_ENTRY}`])}`,
    'CMD ["p2p", "agent"]',
  ];
}

/**
 * The agent image's tag: `lo-p2p-agent:<content hash>`, the hash over the base image (reference and ID), the
 * Dockerfile and exactly the files the image holds (the agent bundle and its protos, `AGENT_BUNDLE_DIR`), so
 * neither lo's version nor the CLI's code is in it: checkouts and versions with the same agent share one image.
 */
export function agentImageTag(
  root: string,
  base: { ref: string; id: string },
): { image: string; hash: string; dir: string; files: string[] } {
  const dir = join(root, AGENT_BUNDLE_DIR);
  if (!existsSync(join(dir, AGENT_ENTRY))) {
    throw new LoError('E_STEP', `the agent bundle ${join(dir, AGENT_ENTRY)} is missing`, {
      hint: `run \`npm run build\` in ${root} (scripts/bundle.js writes it)`,
    });
  }
  const files = filesUnder(dir);
  const h = createHash('sha256').update(`${base.ref}\n${base.id}\n${dockerfileBody(base.ref).join('\n')}\n`);
  for (const f of files) {
    const bytes = readFileSync(join(dir, f));
    h.update(`${f.split('\\').join('/')}\n${bytes.length}\n`).update(bytes);
  }
  const hash = h.digest('hex').slice(0, 16);
  return { image: `${AGENT_IMAGE_REPO}:${hash}`, hash, dir, files };
}

/**
 * Builds (when missing) the agent image: the base image plus the agent bundle, entrypoint node on it. Returns the
 * image reference. Idempotent by content hash. The base is pulled first when missing (its ID is in the hash).
 */
export async function ensureAgentImage(
  docker: Pick<DockerClients, 'images' | 'containers'>,
  opts: AgentImageOptions = {},
): Promise<{ image: string; built: boolean }> {
  const root = opts.root ?? packageRoot();
  const ref = opts.baseImage ?? DEFAULT_AGENT_BASE;
  const { image, hash, dir } = agentImageTag(root, { ref, id: await docker.images.ensure(ref) });
  if ((await docker.images.inspect(image))?.labels[LABELS.contentHash] === hash) return { image, built: false };
  const ctx = await mkdtemp(join(tmpdir(), 'lo-agent-image-'));
  try {
    await cp(dir, join(ctx, 'agent'), { recursive: true });
    const labels = {
      [LABELS.managedBy]: MANAGED_BY,
      [LABELS.role]: AGENT_IMAGE_ROLE,
      [LABELS.contentHash]: hash,
      ...(opts.extraLabels ?? {}),
    };
    const [from, ...rest] = dockerfileBody(ref);
    await writeFileAtomic(
      join(ctx, 'Dockerfile'),
      [from, ...Object.entries(labels).map(([k, v]) => `LABEL ${JSON.stringify(k)}=${JSON.stringify(v)}`), ...rest, ''].join('\n'),
      PUBLIC_MODE,
    );
    await docker.images.build({ context: ctx, src: ['Dockerfile', 'agent'], tag: image, labels });
    await pruneAgentImages(docker, { keepUnused: KEEP_UNUSED_AGENT_IMAGES, keep: [image] });
    return { image, built: true };
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
}

/**
 * Which of lo's agent images to remove (pure): never one a container uses (any container, of any project,
 * running or not: `usedIds`), never one in `keep`, and of the others the `keepUnused` newest stay.
 */
export function staleAgentImages<I extends { id: string; tags: string[]; created?: number }>(
  images: readonly I[],
  usedIds: ReadonlySet<string>,
  opts: { keepUnused: number; keep?: readonly string[] },
): I[] {
  const unused = images
    .filter((i) => !usedIds.has(i.id) && !i.tags.some((t) => opts.keep?.includes(t)))
    .sort((a, b) => (b.created ?? 0) - (a.created ?? 0) || (a.id < b.id ? -1 : 1));
  return unused.slice(opts.keepUnused);
}

/**
 * Removes lo's agent images no container uses, but the `keepUnused` newest of them (and those in `keep`).
 * A build calls it with KEEP_UNUSED_AGENT_IMAGES, so other checkouts' and versions' images stay cached;
 * `lo registry clean --shared` with 0. An image a container started using since the listing keeps its data
 * (Docker answers 409, or only untags it). Returns the tags removed.
 */
export async function pruneAgentImages(
  docker: Pick<DockerClients, 'images' | 'containers'>,
  opts: { keepUnused: number; keep?: readonly string[] },
): Promise<string[]> {
  const images = await docker.images.list([`${LABELS.managedBy}=${MANAGED_BY}`, `${LABELS.role}=${AGENT_IMAGE_ROLE}`]);
  const used = new Set((await docker.containers.list([])).map((c) => c.imageId));
  const removed: string[] = [];
  for (const i of staleAgentImages(images, used, opts)) {
    const tags = i.tags.filter((t) => t !== '<none>:<none>');
    // untagged (a tag moved to a rebuild): by ID
    for (const ref of tags.length > 0 ? tags : [i.id]) if ((await docker.images.remove(ref)) === 'removed') removed.push(ref);
  }
  return removed;
}
