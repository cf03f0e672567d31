import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { agentArgv } from '../../src/agent/options.js';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { planCluster } from '../../src/plan/planCluster.js';
import type { Plan } from '../../src/plan/types.js';
import { endpointLines } from '../../src/cli/commands/plan.js';

const PATHS = { stateDir: '/state/lo', caRoot: '/state/mkcert' };
function plan(body: string): Plan {
  const s = parseSpec(`apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: lok8s\nspec:\n${body}`, { file: 't.yaml' });
  return planCluster(s, { paths: PATHS });
}
function hostUrls(p: Plan, host: string): { hosts: string[]; server?: string } {
  const h = p.containerd.hosts.find((x) => x.host === host);
  if (!h) throw new Error(`no hosts.toml for ${host}`);
  const doc = parse(h.content) as { server?: string; host?: Record<string, { capabilities: string[] }> };
  return { hosts: Object.keys(doc.host ?? {}), ...(doc.server ? { server: doc.server } : {}) };
}

const REWRITE = `          "^rancher/(.*)": "mirrorproject/rancher-images/$1"\n          "^(team)/(.*)": "$1-mirror/\${2}"\n`;
const ONE_NODE_OFF = `  registries:\n    mirrors: []\n    p2p: { enabled: false }\n`;
/** The project's cache (pinned images by tag) comes after the agent and before the endpoints. */
const CACHE = (registry: string): string => `https://10.125.125.102/v2/${registry}`;
const DOCKER_IO = `    hosts:\n      docker.io:\n        disableDefaultEndpoint: true\n        endpoints: [ { url: "http://10.77.0.5:5000" } ]\n        rewrite:\n${REWRITE}`;

describe('rewrites in the plan (issue 14)', () => {
  it('a one-node cluster with P2P off and a rewrite runs a forward-only agent', () => {
    const p = plan(ONE_NODE_OFF + DOCKER_IO);
    expect(p.p2p.enabled).toBe(false);
    expect(p.p2p.forwardOnly).toBe(true);
    expect(p.p2p.agents).toHaveLength(1);
    const a = p.p2p.agents[0]!;
    expect(a.node).toBe('lok8s-control-plane');
    const rewrites = JSON.stringify({
      'docker.io': [
        ['^rancher/(.*)', 'mirrorproject/rancher-images/$1'],
        ['^(team)/(.*)', '$1-mirror/${2}'],
      ],
    });
    expect(a.options).toEqual({
      port: 30020,
      metricsPort: 30022,
      forwardOnly: true,
      rewrites,
      hostsDir: '/proc/1/root/etc/containerd/certs.d',
    });
    // No swarm key, no peers, no libp2p or data port on the command line.
    expect(a.command).toEqual(['p2p', 'agent', ...agentArgv(a.options)]);
    for (const flag of ['--key', '--peers', '--router-port', '--data-port']) expect(a.command).not.toContain(flag);
    expect(a.command).toContain('--forward-only');
    expect(a.command[a.command.indexOf('--rewrites') + 1]).toBe(rewrites);
  });

  it('without a rewrite and with P2P off there is no agent', () => {
    const p = plan(ONE_NODE_OFF + `    hosts:\n      docker.io:\n        endpoints: [ { url: "http://10.77.0.5:5000" } ]\n`);
    expect(p.p2p.agents).toEqual([]);
    expect(p.p2p.forwardOnly).toBe(false);
    expect(hostUrls(p, 'docker.io').hosts).toEqual([CACHE('docker.io'), 'http://10.77.0.5:5000']);
  });

  it("the registry's hosts.toml lists the agent first, then its endpoints; other registries do not list it", () => {
    const p = plan(ONE_NODE_OFF + DOCKER_IO + `      quay.io:\n        endpoints: [ { url: "https://quay.corp.example" } ]\n`);
    expect(hostUrls(p, 'docker.io')).toEqual({
      hosts: ['http://127.0.0.1:30020', CACHE('docker.io'), 'http://10.77.0.5:5000'],
      server: 'http://10.77.0.5:5000',
    });
    const toml = parse(p.containerd.hosts.find((h) => h.host === 'docker.io')!.content) as Record<string, any>;
    expect(toml.host['http://127.0.0.1:30020'].capabilities).toEqual(['pull', 'resolve']);
    expect(hostUrls(p, 'quay.io')).toEqual({ hosts: [CACHE('quay.io'), 'https://quay.corp.example'], server: 'https://quay.io' });
    // The plan lists the rules per registry; the other entry has none.
    expect(p.containerd.endpoints.map((e) => [e.registry, e.rewrites.length])).toEqual([
      ['docker.io', 2],
      ['quay.io', 0],
    ]);
    expect(endpointLines(p)).toContain(
      '    rewrite 1. "^rancher/(.*)" -> "mirrorproject/rancher-images/$1"  (by the node agent, the first rule that changes the name wins)',
    );
  });

  it('a rewrite of a registry lo mirrors puts the agent before the mirror, P2P off', () => {
    const p = plan(`  registries:\n    p2p: { enabled: false }\n    hosts:\n      docker.io:\n        rewrite:\n${REWRITE}`);
    const d = hostUrls(p, 'docker.io');
    expect(d.hosts[0]).toBe('http://127.0.0.1:30020');
    expect(d.hosts.length).toBeGreaterThan(1);
    expect(hostUrls(p, 'quay.io').hosts).not.toContain('http://127.0.0.1:30020');
    // An entry with only rewrites keeps the mirror's upstream as the server.
    expect(d.server).toBe('https://registry-1.docker.io');
  });

  it('"*" rewrites list the agent in _default; registries with an entry of their own get no rules', () => {
    const p = plan(
      `  registries:\n    mirrors: [ { name: quay, url: "https://quay.io" } ]\n    p2p: { enabled: false }\n    hosts:\n` +
        `      "*":\n        rewrite: { "^(.*)$": "all/$1" }\n      ghcr.io:\n        endpoints: [ { url: "https://ghcr.corp.example" } ]\n`,
    );
    expect(hostUrls(p, '_default').hosts).toEqual(['http://127.0.0.1:30020']);
    expect(hostUrls(p, 'ghcr.io').hosts).toEqual([CACHE('ghcr.io'), 'https://ghcr.corp.example']);
    expect(JSON.parse(p.p2p.agents[0]!.options.rewrites!)).toEqual({ '*': [['^(.*)$', 'all/$1']], 'ghcr.io': [], 'quay.io': [] });
    // Keys sorted: the same spec gives the same command (and agent hash).
    expect(Object.keys(JSON.parse(p.p2p.agents[0]!.options.rewrites!))).toEqual(['*', 'ghcr.io', 'quay.io']);
  });

  it('with P2P on, the agents keep their peers and key and add the rewrites; hosts.toml unchanged in order', () => {
    const on = plan(`  nodes: { workers: 1 }\n  registries:\n    mirrors: []\n` + DOCKER_IO);
    expect(on.p2p.enabled).toBe(true);
    expect(on.p2p.forwardOnly).toBe(false);
    expect(on.p2p.agents.map((a) => a.options.peers)).toEqual([['lok8s-worker:30021'], ['lok8s-control-plane:30021']]);
    for (const a of on.p2p.agents) {
      expect(a.options.key).toBe('/etc/lo/p2p/swarm.key');
      expect(a.options.forwardOnly).toBeUndefined();
      expect(a.options.hostsDir).toBe('/proc/1/root/etc/containerd/certs.d');
      expect(JSON.parse(a.options.rewrites!)['docker.io']).toHaveLength(2);
    }
    expect(hostUrls(on, 'docker.io').hosts).toEqual(['http://127.0.0.1:30020', CACHE('docker.io'), 'http://10.77.0.5:5000']);
    // Without rewrites the P2P agents have no --rewrites option at all.
    const plain = plan(`  nodes: { workers: 1 }\n  registries:\n    mirrors: []\n`);
    expect(plain.p2p.agents[0]!.command).not.toContain('--rewrites');
    expect(plain.p2p.agents[0]!.command).not.toContain('--hosts-dir');
  });

  it('the same rules in another order are another command (order matters: first match wins)', () => {
    const swapped = `          "^(team)/(.*)": "$1-mirror/\${2}"\n          "^rancher/(.*)": "mirrorproject/rancher-images/$1"\n`;
    const a = plan(ONE_NODE_OFF + DOCKER_IO).p2p.agents[0]!.command;
    const b = plan(ONE_NODE_OFF + DOCKER_IO.replace(REWRITE, swapped)).p2p.agents[0]!.command;
    expect(a).not.toEqual(b);
    expect(plan(ONE_NODE_OFF + DOCKER_IO).p2p.agents[0]!.command).toEqual(a);
  });
});
