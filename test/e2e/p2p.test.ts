/**
 * The P2P node mirror on real containerd 2.1, pulls through its CRI ImageService: three node containers
 * (lo-test/node:containerd-2.1, kind's config.toml with lo's patches) each with a lo agent deployed by
 * deployP2P, a pull-through mirror registry:2 in front of an upstream registry:2, hosts.toml from the plan
 * (agent first, then the mirror, then the upstream as server), and one intruder node whose agent has
 * another swarm key. Node 1 pulls through the mirror; with mirror and upstream stopped, nodes 2 and 3 pull
 * through their agents; then unknown images, the latest-tag policy, a peer killed mid-blob, a corrupted blob
 * and the intruder. With P2P on and 3 downloads, containerd 2.1 pulls through its transfer service.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createP2PBed, docker, execIn, metric, waitFor, type AgentAnswer, type BedNode, type P2PBed } from '../helpers/p2p.js';

let bed: P2PBed;
let n1: BedNode, n2: BedNode, n3: BedNode, intruder: BedNode;
const img: Record<string, { digest: string; layers: string[] }> = {};
const ref = (repo: string, tag = '1'): string => `docker.io/lop2p/${repo}:${tag}`;
/** One request to a node's agent registry, from inside the node (the port listens on its 127.0.0.1 only). */
const ask = async (n: BedNode, path: string, method: 'GET' | 'HEAD' = 'HEAD'): Promise<AgentAnswer> =>
  (await bed.agent(n, [{ path, method }]))[0]!;
const BIG = 48 << 20;
/** Upload pacing on every agent so the kill test can hit the middle of a blob (48 MiB at 24 MiB/s ~ 2 s). */
const UPLOAD_LIMIT = 24 << 20;

async function setRunning(running: boolean): Promise<void> {
  for (const name of [bed.mirror.name, bed.upstream.name]) {
    const c = docker.getContainer(name);
    if (running) await c.start().catch((e: { statusCode?: number }) => (e.statusCode === 304 ? null : Promise.reject(e)));
    else await c.stop({ t: 0 }).catch((e: { statusCode?: number }) => (e.statusCode === 304 ? null : Promise.reject(e)));
  }
}

async function hasContent(n: BedNode, digest: string): Promise<boolean> {
  const r = await bed.ctr(n, ['content', 'ls', '-q']);
  return r.stdout.split('\n').includes(digest);
}

async function expectPull(n: BedNode, reference: string): Promise<number> {
  const r = await bed.pull(n, reference);
  if (r.code !== 0) {
    throw new Error(
      `pull ${reference} on ${n.name} failed (${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr}\nagent log:\n${await bed.agentLogs(n)}`,
    );
  }
  return r.ms;
}

describe('P2P node mirror (3 containerd nodes + intruder)', () => {
  beforeAll(async () => {
    bed = await createP2PBed({ nodes: 3, intruders: 1, uploadBytesPerSecond: UPLOAD_LIMIT });
    [n1, n2, n3, intruder] = bed.nodes as [BedNode, BedNode, BedNode, BedNode];
    img.a = await bed.seed('a', ['1', 'latest'], 2 << 20);
    img.big = await bed.seed('big', ['1'], BIG);
    img.c = await bed.seed('c', ['1'], 3 << 20);
    img.d = await bed.seed('d', ['1'], 1 << 20);
  }, 240_000);

  afterAll(async () => {
    await bed?.destroy();
  }, 120_000);

  it('the plan puts the agent first in hosts.toml, with dial_timeout, and containerd accepts the file', async () => {
    const h = bed.plan.containerd.hosts.find((x) => x.host === 'docker.io')!;
    const hosts = [...h.content.matchAll(/\[host\."([^"]+)"\]/g)].map((m) => m[1]);
    expect(hosts[0]).toBe(bed.plan.p2p.endpoint);
    expect(h.content).toContain('dial_timeout = "200ms"');
    // Node 1 pulls through this file (agent -> mirror). If containerd rejected the file it would fall back to
    // https://registry-1.docker.io, which is unreachable here, and the pull would fail.
    await expectPull(n1, ref('a'));
    await expectPull(n1, ref('big'));
    await expectPull(n1, ref('c'));
    const m = await bed.metrics(n1);
    // The agent was asked first and answered 404 (nobody had it yet); containerd moved on to the mirror.
    expect(metric(m, 'lo_p2p_requests_total', { source: 'none', result: 'not-found' })).toBeGreaterThan(0);
    const mirrored = await fetch(`http://${bed.mirror.ip}/v2/_catalog`).then((r) => r.json() as Promise<{ repositories: string[] }>);
    expect(mirrored.repositories).toEqual(expect.arrayContaining(['lop2p/a', 'lop2p/big', 'lop2p/c']));
    // The intruder has its own image d (pulled through the mirror too).
    await expectPull(intruder, ref('d'));
  });

  it('advertises what containerd stores (events) to the peers, not to the intruder', async () => {
    await waitFor('n1 advertises a, big, c', async () => {
      const m = await bed.metrics(n1);
      return metric(m, 'lo_p2p_advertised_tags') >= 3 && metric(m, 'lo_p2p_peers') === 2;
    });
    for (const n of [n2, n3]) expect(metric(await bed.metrics(n), 'lo_p2p_peers')).toBe(2);
    expect(metric(await bed.metrics(intruder), 'lo_p2p_peers')).toBe(0);
    // Node 2's agent already finds the manifest through the DHT (HEAD, relayed from node 1).
    await waitFor('n2 resolves a:1 via the DHT', async () => {
      const r = await ask(n2, '/v2/lop2p/a/manifests/1?ns=docker.io');
      return r.status === 200 && r.headers['docker-content-digest'] === img.a!.digest;
    });
  });

  it('with mirror and upstream stopped, nodes 2 and 3 pull by tag and by digest through P2P', async () => {
    await setRunning(false);
    const tagsBefore = metric(await bed.metrics(n2), 'lo_p2p_advertised_tags');
    const tagMs = await expectPull(n2, ref('a'));
    // containerd's /images/create event makes the agent advertise the new image soon after the pull.
    const pulledAt = performance.now();
    await waitFor('n2 advertises a:1', async () => metric(await bed.metrics(n2), 'lo_p2p_advertised_tags') > tagsBefore, 5_000, 50);
    const advertiseMs = performance.now() - pulledAt;
    const digestMs = await expectPull(n3, `docker.io/lop2p/a@${img.a!.digest}`);
    const bigMs = await expectPull(n2, ref('big'));
    for (const d of img.a!.layers) {
      expect(await hasContent(n2, d)).toBe(true);
      expect(await hasContent(n3, d)).toBe(true);
    }
    expect(await hasContent(n2, img.big!.layers[0]!)).toBe(true);
    const m2 = await bed.metrics(n2);
    expect(metric(m2, 'lo_p2p_requests_total', { route: 'manifest', source: 'peer', result: 'ok' })).toBeGreaterThan(0);
    expect(metric(m2, 'lo_p2p_requests_total', { route: 'blob', source: 'peer', result: 'ok' })).toBeGreaterThan(0);
    expect(metric(m2, 'lo_p2p_bytes_served_total', { source: 'peer' })).toBeGreaterThanOrEqual(BIG);
    // The bodies crossed on the agents' TLS-PSK data port (the libp2p stream is the fallback).
    expect(metric(m2, 'lo_p2p_peer_fetches_total', { transport: 'data' })).toBeGreaterThan(0);
    console.log(
      `[p2p] n2 requests to peers: data port ${metric(m2, 'lo_p2p_peer_fetches_total', { transport: 'data' })}, stream ${metric(m2, 'lo_p2p_peer_fetches_total', { transport: 'stream' })}`,
    );
    console.log(
      `[p2p] pulls with mirror+upstream down: a:1 by tag ${tagMs.toFixed(0)} ms, a by digest ${digestMs.toFixed(0)} ms, big (48 MiB, paced 24 MiB/s) ${bigMs.toFixed(0)} ms; n2 advertised a:1 ${advertiseMs.toFixed(0)} ms after its pull`,
    );
  });

  it('an image nobody has fails over fast (404 within the resolve timeout)', async () => {
    // Timed inside node 3, next to its containerd (one exec for all of them).
    const answers = await bed.agent(n3, [
      ...Array.from({ length: 10 }, (_, i) => ({ path: `/v2/lop2p/nothing/manifests/${i}?ns=docker.io`, method: 'HEAD' as const })),
      { path: `/v2/lop2p/nothing/blobs/sha256:${'0'.repeat(64)}` },
    ]);
    for (const a of answers) expect(a.status).toBe(404);
    const times = answers.slice(0, 10).map((a) => a.ms);
    const blobMs = answers[10]!.ms;
    times.sort((a, b) => a - b);
    const p50 = times[5]!;
    const m3 = await bed.metrics(n3);
    const gaveUp =
      metric(m3, 'lo_p2p_resolve_duration_seconds_sum', { found: 'false' }) /
      metric(m3, 'lo_p2p_resolve_duration_seconds_count', { found: 'false' });
    console.log(`[p2p] agent-side: mean time to give up on a lookup ${(gaveUp * 1000).toFixed(1)} ms`);
    console.log(
      `[p2p] time to 404 for an unknown tag: p50 ${p50.toFixed(1)} ms, max ${times[9]!.toFixed(1)} ms; unknown blob ${blobMs.toFixed(1)} ms (resolve timeout ${bed.plan.p2p.resolveTimeoutMs} ms)`,
    );
    expect(p50).toBeLessThan(bed.plan.p2p.resolveTimeoutMs + 80);
    // containerd: the agent's 404 sends it on to the mirror and upstream (stopped), so the pull fails — fast.
    const r = await bed.pull(n3, ref('nothing'), 60_000);
    expect(r.code).not.toBe(0);
    console.log(`[p2p] CRI pull of an unknown image failed after ${r.ms.toFixed(0)} ms (agent 404, then mirror and upstream down)`);
  });

  it('tags named latest are not resolved by P2P (resolveLatest off)', async () => {
    expect((await ask(n1, '/v2/lop2p/a/manifests/latest?ns=docker.io')).status).toBe(404);
    expect((await ask(n3, '/v2/lop2p/a/manifests/latest?ns=docker.io')).status).toBe(404);
    expect(metric(await bed.metrics(n3), 'lo_p2p_requests_total', { result: 'tag-policy' })).toBeGreaterThanOrEqual(1);
    // The same content by tag 1 resolves, so only the policy stands in the way.
    expect((await ask(n3, '/v2/lop2p/a/manifests/1?ns=docker.io')).status).toBe(200);
  });

  it('a node with another swarm key can neither join, nor fetch, nor serve', async () => {
    expect(metric(await bed.metrics(intruder), 'lo_p2p_peers')).toBe(0);
    for (const n of [n1, n2, n3]) expect(metric(await bed.metrics(n), 'lo_p2p_peers')).toBe(2);
    // Fetch: the intruder's agent does not find a:1, which all three nodes hold.
    expect((await ask(intruder, `/v2/lop2p/a/manifests/${img.a!.digest}`)).status).toBe(404);
    // Serve: d is only on the intruder; the cluster never learns about it.
    expect((await ask(n1, `/v2/lop2p/d/manifests/${img.d!.digest}`)).status).toBe(404);
    expect((await ask(intruder, `/v2/lop2p/d/manifests/${img.d!.digest}`)).status).toBe(200);
    const logs = await bed.agentLogs(intruder);
    expect(logs).toMatch(/bootstrap \/ip4\/.* /);
  });

  it('a container on the network (not a node) cannot read a node registry, nor speak /lo/oci/1.0.0 or the data port without the key', async () => {
    const { port, routerPort, metricsPort, dataPort } = bed.plan.p2p;
    const logs = ((await docker.getContainer(n1.agent).logs({ stdout: true, stderr: true })) as unknown as Buffer).toString('latin1');
    const peerId = /\/p2p\/(12D3Koo\w+)/.exec(logs)?.[1];
    expect(peerId, logs.slice(0, 2000)).toBeTruthy();
    const cfg = { ip: n1.ip, port, routerPort, metricsPort, dataPort, peerId, digest: img.a!.layers[0] };
    const out = JSON.parse(
      await bed.outsider(`
        import net from 'node:net';
        import { multiaddr } from '@multiformats/multiaddr';
        const cfg = ${JSON.stringify(cfg)};
        const out = {};
        const code = (e) => String(e.cause?.code ?? e.code ?? e.name ?? e.message);
        // What a pod would try first: the registry port at the node's address.
        try {
          const r = await fetch('http://' + cfg.ip + ':' + cfg.port + '/v2/lop2p/a/blobs/' + cfg.digest, { signal: AbortSignal.timeout(3000) });
          out.registry = { status: r.status };
        } catch (e) { out.registry = { error: code(e) }; }
        // A client without the key asking for the protocol in plain multistream-select.
        out.raw = await new Promise((resolve) => {
          const s = net.connect(cfg.routerPort, cfg.ip);
          let got = Buffer.alloc(0);
          s.on('connect', () => s.write(Buffer.concat([Buffer.from([19]), Buffer.from('/multistream/1.0.0\\n'), Buffer.from([14]), Buffer.from('/lo/oci/1.0.0\\n')])));
          s.on('data', (c) => (got = Buffer.concat([got, c])));
          const end = () => resolve({ bytes: got.length, multistream: got.includes('/multistream/'), oci: got.includes('/lo/oci/') });
          s.on('close', end);
          s.on('error', end);
          setTimeout(() => s.destroy(), 3000);
        });
        // A real libp2p node with another key dialling the protocol at the node's peer id.
        const { Libp2pRouter } = await import('/opt/lo/dist/agent/libp2pRouter.js');
        const { generateSwarmKey, parseSwarmKey } = await import('/opt/lo/dist/agent/swarmKey.js');
        const r = await Libp2pRouter.start({ port: 0, psk: parseSwarmKey(generateSwarmKey()), bootstrap: [] });
        try {
          await r.node.dialProtocol(multiaddr('/ip4/' + cfg.ip + '/tcp/' + cfg.routerPort + '/p2p/' + cfg.peerId), '/lo/oci/1.0.0', { signal: AbortSignal.timeout(5000) });
          out.stream = { opened: true };
        } catch (e) { out.stream = { opened: false, error: e.name + ': ' + e.message }; }
        await r.stop();
        // The data port: TLS without a pre-shared key, and TLS-PSK with a key derived from another swarm key.
        const { createDataClient, dataKeyOf } = await import('/opt/lo/dist/agent/dataPath.js');
        const blobPath = '/v2/lop2p/a/blobs/' + cfg.digest;
        try {
          const r = await fetch('https://' + cfg.ip + ':' + cfg.dataPort + blobPath, { signal: AbortSignal.timeout(3000) });
          out.dataTls = { status: r.status };
        } catch (e) { out.dataTls = { error: code(e) }; }
        const wrong = createDataClient(dataKeyOf(parseSwarmKey(generateSwarmKey())));
        try {
          const r = await wrong.fetch('https://' + cfg.ip + ':' + cfg.dataPort, { method: 'GET', path: blobPath, headers: {} }, 3000, AbortSignal.timeout(5000));
          out.dataPsk = { status: r.status };
        } catch (e) { out.dataPsk = { error: code(e) }; }
        wrong.close();
        // The counters stay readable for the user (documented): the metrics port is on the node's addresses.
        out.metrics = { status: (await fetch('http://' + cfg.ip + ':' + cfg.metricsPort + '/metrics')).status };
        process.stdout.write(JSON.stringify(out));
      `),
    ) as {
      registry: { status?: number; error?: string };
      raw: { bytes: number; multistream: boolean; oci: boolean };
      stream: { opened: boolean; error?: string };
      dataTls: { status?: number; error?: string };
      dataPsk: { status?: number; error?: string };
      metrics: { status: number };
    };
    console.log(`[p2p] outsider on the network: ${JSON.stringify(out)}`);
    expect(out.registry).toEqual({ error: 'ECONNREFUSED' });
    // pnet answers with its 24-byte nonce and then only ciphertext: no protocol negotiation without the key.
    expect(out.raw).toMatchObject({ multistream: false, oci: false });
    expect(out.stream.opened).toBe(false);
    // No HTTP status from the data port without the key: the handshake fails before a request is read.
    expect(out.dataTls.status).toBeUndefined();
    expect(out.dataPsk.status).toBeUndefined();
    expect(out.dataPsk.error).toBeTruthy();
    expect(out.metrics.status).toBe(200);
    // The same blob is there for the node's own containerd (inside its namespace).
    expect((await ask(n1, `/v2/lop2p/a/blobs/${cfg.digest}`)).status).toBe(200);
  });

  it('a peer that serves a corrupted blob is caught by digest verification; containerd then falls back cleanly', async () => {
    const layer = img.c!.layers[0]!;
    const path = `/var/lib/containerd/io.containerd.content.v1.content/blobs/sha256/${layer.slice(7)}`;
    const flip = await execIn(n1.name, [
      'node',
      '-e',
      `const fs=require('fs');const fd=fs.openSync(${JSON.stringify(path)},'r+');fs.writeSync(fd,Buffer.from('corrupted by the test'),0,21,100000);fs.closeSync(fd)`,
    ]);
    expect(flip.code).toBe(0);
    const before = metric(await bed.metrics(n2), 'lo_p2p_requests_total', { result: 'digest-mismatch' });
    const bad = await bed.pull(n2, ref('c'));
    expect(bad.code).not.toBe(0);
    expect(await hasContent(n2, layer)).toBe(false);
    expect(metric(await bed.metrics(n2), 'lo_p2p_requests_total', { result: 'digest-mismatch' })).toBe(before + 1);
    // With the mirror back, the agent skips the bad peer for that digest (404 at once) and containerd pulls from the mirror.
    await setRunning(true);
    await waitFor('mirror up', async () => (await fetch(`http://${bed.mirror.ip}/v2/`)).ok, 20_000);
    await expectPull(n2, ref('c'));
    expect(await hasContent(n2, layer)).toBe(true);
    await setRunning(false);
  });

  it('a peer killed in the middle of a large blob does not break the pull', async () => {
    // n1 and n2 hold big; n3 pulls it and we kill whichever agent starts sending it.
    const layer = img.big!.layers[0]!;
    const base = new Map<string, number>();
    for (const n of [n1, n2]) base.set(n.name, metric(await bed.metrics(n), 'lo_p2p_bytes_served_total', { source: 'local' }));
    const pull = bed.pull(n3, ref('big'), 120_000);
    const victim = await waitFor(
      'a peer sending the big layer',
      async () => {
        for (const n of [n1, n2]) {
          const sent = metric(await bed.metrics(n), 'lo_p2p_bytes_served_total', { source: 'local' }) - base.get(n.name)!;
          if (sent > 8 << 20) return n;
        }
        return null;
      },
      30_000,
      50,
    );
    await docker.getContainer(victim.agent).kill();
    const r = await pull;
    if (r.code !== 0)
      throw new Error(`pull failed after killing ${victim.name}'s agent: ${r.stdout.slice(-1500)}\n${await bed.agentLogs(n3)}`);
    expect(await hasContent(n3, layer)).toBe(true);
    const m3 = await bed.metrics(n3);
    console.log(
      `[p2p] killed ${victim.name}'s agent mid-blob; n3 pull finished in ${r.ms.toFixed(0)} ms, failovers ${metric(m3, 'lo_p2p_peer_failovers_total')}`,
    );
    expect(metric(m3, 'lo_p2p_peer_failovers_total')).toBeGreaterThanOrEqual(1);
  });

  it("with p2p.resolveTags off (lo's default) a node takes no tag from its peers, only digests", async () => {
    // Node 3's agent again, with the default: no registry's tags are taken from peers.
    const planned = bed.plan.p2p.agents.find((a) => a.node === n3.name)!;
    planned.options = { ...planned.options, resolveTags: [] };
    const actions = await bed.redeploy();
    expect(actions.map((a) => `${a.action} ${a.object}`)).toContain(`recreate p2p agent ${n3.agent}`);
    await waitFor('n3 rejoins', async () => metric(await bed.metrics(n3), 'lo_p2p_peers') === 2, 30_000);
    // c:1 is held by n1 and n2 (they advertise it), not by n3; mirror and upstream are down.
    expect(await hasContent(n3, img.c!.digest)).toBe(false);
    const t = await ask(n3, '/v2/lop2p/c/manifests/1?ns=docker.io');
    expect(t.status).toBe(404);
    expect(metric(await bed.metrics(n3), 'lo_p2p_requests_total', { route: 'manifest', result: 'tag-untrusted' })).toBe(1);
    // the same manifest by digest comes from a peer, verified
    const d = await ask(n3, `/v2/lop2p/c/manifests/${img.c!.digest}`);
    if (d.status !== 200) console.log(`[p2p] n3 answered ${d.status}; its agent log:\n${await bed.agentLogs(n3)}`);
    expect(d.status).toBe(200);
    expect(d.headers['docker-content-digest']).toBe(img.c!.digest);
    expect(
      metric(await bed.metrics(n3), 'lo_p2p_requests_total', { route: 'manifest', source: 'peer', result: 'ok' }),
    ).toBeGreaterThanOrEqual(1);
    // so containerd's pull by tag goes on to the (stopped) mirror and fails, while the peers could have answered
    const r = await bed.pull(n3, ref('c'), 60_000);
    expect(r.code).not.toBe(0);
  });
});
