/**
 * The provision wiring of the P2P mirror on kind-shaped nodes (/var a volume, /run — containerd's socket — a
 * tmpfs): the provision hook (createP2PHook) builds the agent image and runs one agent per node as a sidecar
 * sharing the node's network and PID namespaces, reaching containerd through /proc/1/root. Node 1 pulls through
 * the mirror; with the mirror and upstream stopped node 2 pulls through P2P. A second deployment changes nothing.
 */
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureAgentImage } from '../../src/apply/agentImage.js';
import { NODE_IMAGE, clients, createP2PBed, docker, metric, waitFor, type BedNode, type P2PBed } from '../helpers/p2p.js';

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

  it('a new agent image removes older ones lo built, except those agents still run', async () => {
    const running = (await docker.getContainer(n1.agent).inspect()).Config.Image;
    const stale = `lo-p2p-agent:0.0.0-stale${Date.now()}`;
    await execa('sh', [
      '-c',
      `tar -C /etc -c hostname | docker import ${Object.entries({
        'dev.lok8s.lo.managed-by': 'lo',
        'dev.lok8s.lo.role': 'p2p-agent-image',
        'dev.lok8s.lo.content-hash': 'stale',
        ...bed.labels,
      })
        .map(([k, v]) => `--change 'LABEL ${k}=${v}'`)
        .join(' ')} - ${stale}`,
    ]);
    // Another base makes another content hash, so this builds, then prunes.
    const other = await ensureAgentImage(clients, { baseImage: 'registry:2', extraLabels: bed.labels });
    expect(other.built).toBe(true);
    expect(
      await docker
        .getImage(stale)
        .inspect()
        .then(
          () => true,
          () => false,
        ),
    ).toBe(false);
    expect(
      await docker
        .getImage(running)
        .inspect()
        .then(
          () => true,
          () => false,
        ),
    ).toBe(true);
    await docker.getImage(other.image).remove({ force: true });
  });
});
