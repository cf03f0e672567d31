/**
 * The provision wiring of the P2P mirror on kind-shaped nodes (/var a volume, /run — containerd's socket — a
 * tmpfs): the provision hook (createP2PHook) builds the agent image and runs one agent per node as a sidecar
 * sharing the node's network and PID namespaces, reaching containerd through /proc/1/root. Node 1 pulls through
 * the mirror; with the mirror and upstream stopped node 2 pulls through P2P. A second deployment changes nothing.
 */
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_BUNDLE_DIR, ensureAgentImage } from '../../src/apply/agentImage.js';
import { NODE_IMAGE, REPO_ROOT, clients, createP2PBed, docker, metric, waitFor, type BedNode, type P2PBed } from '../helpers/p2p.js';

let bed: P2PBed;
let n1: BedNode, n2: BedNode;
let a: { digest: string; layers: string[] };

describe('P2P wiring on kind-shaped nodes (agent image from the provision hook, containerd through /proc/1/root)', () => {
  beforeAll(async () => {
    bed = await createP2PBed({ nodes: 2, buildImage: true });
    [n1, n2] = bed.nodes as [BedNode, BedNode];
    a = await bed.seed('wired', ['1'], 1 << 20);
  }, 240_000);

  afterAll(async () => {
    await bed?.destroy();
  }, 120_000);

  it('builds the agent image and runs one agent per node from it', async () => {
    const image = bed.deployActions.find((x) => x.object.startsWith('image '));
    expect(image?.object).toMatch(/^image lo-p2p-agent:/);
    for (const n of bed.nodes) {
      const info = await docker.getContainer(n.agent).inspect();
      expect(info.Config.Image).toBe(image!.object.slice('image '.length));
      expect(info.HostConfig.NetworkMode).toMatch(/^container:/);
      expect(info.HostConfig.PidMode).toMatch(/^container:/);
      expect(info.Config.Cmd).toEqual(expect.arrayContaining(['--containerd', '/proc/1/root/run/containerd/containerd.sock']));
    }
  });

  it('node 2 pulls through P2P what node 1 pulled, with mirror and upstream stopped', async () => {
    const r1 = await bed.pull(n1, 'docker.io/lop2p/wired:1');
    expect(r1.code, r1.stdout.slice(-1000)).toBe(0);
    await waitFor(
      'node 1 advertises the tag',
      async () => metric(await bed.metrics(n1), 'lo_p2p_advertised_tags') >= 1 && metric(await bed.metrics(n1), 'lo_p2p_peers') === 1,
    ).catch(async (e: Error) =>
      Promise.reject(
        new Error(
          `${e.message}\n${[...(await bed.metrics(n1))].filter(([k]) => !k.includes('process') && !k.includes('nodejs')).join('\n')}\n${await bed.agentLogs(n1)}`,
        ),
      ),
    );
    await waitFor(
      'node 2 resolves it',
      async () => (await bed.agent(n2, [{ path: `/v2/lop2p/wired/manifests/${a.digest}`, method: 'HEAD' }]))[0]!.status === 200,
    );
    await docker.getContainer(bed.mirror.name).stop({ t: 0 });
    await docker.getContainer(bed.upstream.name).stop({ t: 0 });
    const r2 = await bed.pull(n2, 'docker.io/lop2p/wired:1');
    expect(r2.code, `${r2.stdout.slice(-1000)}\n${await bed.agentLogs(n2)}`).toBe(0);
    expect(metric(await bed.metrics(n2), 'lo_p2p_requests_total', { route: 'blob', source: 'peer', result: 'ok' })).toBeGreaterThan(0);
  });

  it('deploying again is a no-op, and the image is only built when its content changes', async () => {
    const again = await bed.redeploy();
    expect(again.map((x) => x.action)).toEqual(again.map(() => 'noop'));
    expect(again.length).toBe(1 + bed.nodes.length);
    const first = await ensureAgentImage(clients, { baseImage: NODE_IMAGE, extraLabels: bed.labels });
    const second = await ensureAgentImage(clients, { baseImage: NODE_IMAGE, extraLabels: bed.labels });
    expect(second).toEqual({ image: first.image, built: false });
  });

  it('a second checkout of another lo version with the same agent content builds nothing', async () => {
    const first = await ensureAgentImage(clients, { baseImage: NODE_IMAGE, extraLabels: bed.labels });
    const other = await mkdtemp(join(tmpdir(), 'lo-other-checkout-'));
    try {
      await writeFile(join(other, 'package.json'), JSON.stringify({ name: 'lo', version: '99.0.0' }));
      await cp(join(REPO_ROOT, AGENT_BUNDLE_DIR), join(other, AGENT_BUNDLE_DIR), { recursive: true });
      await writeFile(join(other, 'dist', 'bundle', 'lo.cjs'), '// another CLI\n');
      expect(await ensureAgentImage(clients, { root: other, baseImage: NODE_IMAGE, extraLabels: bed.labels })).toEqual({
        image: first.image,
        built: false,
      });
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it('a build removes no image a container uses, keeps the newest unused ones, and only those beyond go', async () => {
    const exists = (ref: string): Promise<boolean> =>
      docker
        .getImage(ref)
        .inspect()
        .then(
          () => true,
          () => false,
        );
    const running = (await docker.getContainer(n1.agent).inspect()).Config.Image;
    const fake = async (name: string): Promise<string> => {
      const ref = `lo-p2p-agent:${name}-${Date.now()}`;
      await execa('sh', [
        '-c',
        `tar -C /etc -c hostname | docker import ${Object.entries({
          'dev.lok8s.lo.managed-by': 'lo',
          'dev.lok8s.lo.role': 'p2p-agent-image',
          'dev.lok8s.lo.content-hash': name,
          ...bed.labels,
        })
          .map(([k, v]) => `--change 'LABEL ${k}=${v}'`)
          .join(' ')} - ${ref}`,
      ]);
      await new Promise((r) => setTimeout(r, 1100)); // Docker's Created has seconds
      return ref;
    };
    // The oldest: an image only a stopped container (say another project's, or another checkout's) uses.
    const used = await fake('used');
    const holder = await docker.createContainer({ Image: used, Cmd: ['/x'], Labels: bed.labels });
    const unused = [await fake('old'), await fake('mid'), await fake('new'), await fake('newest')];
    // Another base makes another content hash, so this builds, then prunes.
    const other = await ensureAgentImage(clients, { baseImage: 'registry:2', extraLabels: bed.labels });
    try {
      expect(other.built).toBe(true);
      expect(await exists(running)).toBe(true);
      expect(await exists(used)).toBe(true);
      expect(await exists(other.image)).toBe(true);
      // the three newest unused stay cached (other checkouts' and versions' images); the oldest unused goes
      expect(await Promise.all(unused.map(exists))).toEqual([false, true, true, true]);
    } finally {
      await holder.remove({ force: true });
      for (const ref of [used, ...unused, other.image])
        await docker
          .getImage(ref)
          .remove({ force: true })
          .catch(() => undefined);
    }
  });
});
