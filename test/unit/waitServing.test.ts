/**
 * The readiness wait of `lo registry up` (src/apply/waitServing.ts) against real HTTP listeners on loopback:
 * a registry that listens late, a mirror whose proxy port stays closed while its replica answers, and a
 * container that never answers or stopped (the in-memory Docker only gives its state and log).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { servingTargets, waitServing, type ServingTarget } from '../../src/apply/waitServing.js';
import { LoError } from '../../src/errors/loError.js';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { planCluster } from '../../src/plan/planCluster.js';
import { FakeDocker } from '../support/fakeDocker.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A /v2/ answering like registry:2 (200 `{}`), on `port` (0: any free one). */
function listen(port = 0): Promise<number> {
  const s = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  servers.push(s);
  return new Promise((r) => s.listen(port, '127.0.0.1', () => r((s.address() as AddressInfo).port)));
}

/** A port nothing listens on (bound once, then closed): connects are refused. */
async function closedPort(): Promise<number> {
  const s = createServer();
  const port = await new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));
  await new Promise((r) => s.close(r));
  return port;
}

function fakeWith(name: string, status = 'running'): FakeDocker {
  const fake = new FakeDocker();
  fake.addContainer({ name, status, running: status === 'running' });
  return fake;
}

describe('waitServing: up returns once what it started answers', () => {
  it('waits for a registry that starts listening late, then reports it serving', async () => {
    const port = await closedPort();
    setTimeout(() => void listen(port), 400);
    const t: ServingTarget = { name: 'build', container: 'c-build', endpoint: `http://127.0.0.1:${port}` };
    const progress: string[] = [];
    const [r] = await waitServing([t], { docker: fakeWith('c-build'), timeoutMs: 10_000, onProgress: (s) => progress.push(s) });
    expect(r).toMatchObject({ name: 'build', container: 'c-build', state: 'serving' });
    expect(r!.ms).toBeGreaterThanOrEqual(300);
    expect(progress[0]).toMatch(/^waiting for c-build to answer \/v2\//);
  });

  it('a mirror whose proxy port stays closed while its replica and its upstream answer: serving offline after the bound', async () => {
    const proxy = await closedPort();
    const replica = await listen();
    const upstream = await listen();
    const t: ServingTarget = {
      name: 'hub',
      container: 'c-hub',
      endpoint: `http://127.0.0.1:${proxy}`,
      replicaEndpoint: `http://127.0.0.1:${replica}`,
      upstream: `http://127.0.0.1:${upstream}`,
    };
    const [r] = await waitServing([t], { docker: fakeWith('c-hub'), timeoutMs: 800 });
    expect(r!.state).toBe('serving offline');
    expect(r!.detail).toContain('the pull-through proxy did not answer within 1 s');
    expect(r!.detail).toContain(`read-only replica http://127.0.0.1:${replica} serves the cache`);
    expect(r!.detail).toContain('ECONNREFUSED');
    expect(r!.ms).toBeGreaterThanOrEqual(800);
  });

  it('a mirror whose upstream does not answer this machine: serving offline as soon as its replica answers', async () => {
    const [proxy, upstream] = [await closedPort(), await closedPort()];
    const t: ServingTarget = {
      name: 'hub',
      container: 'c-hub',
      endpoint: `http://127.0.0.1:${proxy}`,
      replicaEndpoint: `http://127.0.0.1:${await listen()}`,
      upstream: `http://127.0.0.1:${upstream}`,
    };
    const [r] = await waitServing([t], { docker: fakeWith('c-hub'), timeoutMs: 60_000 });
    expect(r!.state).toBe('serving offline');
    expect(r!.detail).toContain(`its upstream http://127.0.0.1:${upstream} does not answer from this machine`);
    expect(r!.ms).toBeLessThan(60_000);
  });

  it('a proxy that listens late, its upstream up: waited for, serving', async () => {
    const proxy = await closedPort();
    setTimeout(() => void listen(proxy), 500);
    const t: ServingTarget = {
      name: 'hub',
      container: 'c-hub',
      endpoint: `http://127.0.0.1:${proxy}`,
      replicaEndpoint: `http://127.0.0.1:${await listen()}`,
      upstream: `http://127.0.0.1:${await listen()}`,
    };
    const [r] = await waitServing([t], { docker: fakeWith('c-hub'), timeoutMs: 10_000 });
    expect(r!.state).toBe('serving');
  });

  it('nothing answering within the bound fails with exit 5, naming the container and its log', async () => {
    const fake = fakeWith('c-cache');
    const t: ServingTarget = { name: 'cache', container: 'c-cache', endpoint: `http://127.0.0.1:${await closedPort()}` };
    const err = (await waitServing([t], { docker: fake, timeoutMs: 600 }).catch((e: unknown) => e)) as LoError;
    expect(err).toBeInstanceOf(LoError);
    expect(err.exitCode).toBe(5);
    expect(err.message).toMatch(/registry cache \(c-cache\) is not serving: no answer on http:\/\/127\.0\.0\.1:\d+\/v2\/ within 1 s/);
    expect(err.hint).toContain('docker logs c-cache');
  });

  it('a container that stopped fails at once with its state, not after the whole bound', async () => {
    const t: ServingTarget = { name: 'hub', container: 'c-dead', endpoint: `http://127.0.0.1:${await closedPort()}` };
    const err = (await waitServing([t], { docker: fakeWith('c-dead', 'exited'), timeoutMs: 60_000 }).catch((e: unknown) => e)) as LoError;
    expect(err.exitCode).toBe(5);
    expect(err.message).toContain('its container is exited');
  });

  it('targets: only the registries whose container was created, recreated or started; a mirror with its replica', () => {
    const plan = planCluster(
      parseSpec(
        JSON.stringify({
          apiVersion: 'cluster.lok8s.dev/v1beta1',
          kind: 'Lo',
          metadata: { name: 'lows' },
          spec: { registries: { tls: false, mirrors: [{ name: 'lows-hub', url: 'http://10.141.30.250:5000', registry: 'docker.io' }] } },
        }),
        { file: '/tmp/lows/spec.yaml' },
      ),
      { paths: { stateDir: '/tmp/lows/state', caRoot: '/tmp/lows/ca' } },
    );
    const [build, cache, hub] = ['build', 'cache', 'lows-hub'].map((n) => plan.registries.find((r) => r.name === n)!);
    const targets = servingTargets(plan, [
      { kind: 'container', name: build!.containerName, action: 'noop' },
      { kind: 'container', name: cache!.containerName, action: 'noop', reason: 'started (was created)' },
      { kind: 'container', name: hub!.containerName, action: 'recreate', reason: 'image registry:2 changed' },
      { kind: 'volume', name: hub!.volume, action: 'create' },
    ]);
    expect(targets.map((t) => t.name).sort()).toEqual(['cache', 'lows-hub']);
    expect(targets.find((t) => t.name === 'lows-hub')).toEqual({
      name: 'lows-hub',
      container: hub!.containerName,
      endpoint: hub!.endpoint,
      replicaEndpoint: hub!.replica!.endpoint,
      upstream: hub!.upstream,
    });
  });
});
