import { ConfigError } from '../../src/errors/loError.js';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { addAgentOptions, AGENT_OPTIONS, agentArgv, type AgentOptions } from '../../src/agent/options.js';
import { buildProgram } from '../../src/cli/main.js';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { planCluster } from '../../src/plan/planCluster.js';

/** Parses `lo p2p agent <argv>` with the real program and returns the options the action receives. */
async function parseWithLo(argv: string[]): Promise<AgentOptions> {
  const program = await buildProgram('p2p');
  const agent = program.commands.find((c) => c.name() === 'p2p')!.commands.find((c) => c.name() === 'agent')!;
  let seen: AgentOptions | undefined;
  agent.action((opts: AgentOptions) => {
    seen = opts;
  });
  await program.parseAsync(['node', 'lo', 'p2p', 'agent', ...argv]);
  return seen!;
}

const FULL: AgentOptions = {
  port: 31000,
  routerPort: 31001,
  metricsPort: 31002,
  dataPort: 31003,
  host: '127.0.0.2',
  publicHost: '10.0.0.5',
  key: '/k/swarm.key',
  peers: ['lok8s-worker:31001', 'lok8s-worker2:31001'],
  containerd: '/proc/1/root/run/containerd/containerd.sock',
  namespace: 'moby',
  contentDir: '/proc/1/root/var/lib/containerd/io.containerd.content.v1.content',
  resolveTimeoutMs: 35,
  resolveLatest: true,
  resolveTags: ['docker.io'],
  registries: ['docker.io', 'quay.io'],
  uploadLimit: 1048576,
  readvertise: 60,
  rewrites: '{"docker.io":[["^rancher/(.*)","mirrorproject/rancher-images/${1}"]]}',
  hostsDir: '/proc/1/root/etc/containerd/certs.d',
  forwardOnly: true,
  quiet: true,
};

describe('lo p2p agent option table', () => {
  it('argv built from options parses back, with the real lo program, to the same options', async () => {
    expect(await parseWithLo(agentArgv(FULL))).toEqual(FULL);
  });

  it('options left out parse to the table defaults', async () => {
    const defaults = Object.fromEntries(Object.entries(AGENT_OPTIONS).map(([k, row]) => [k, row.default]));
    expect(await parseWithLo(agentArgv({}))).toEqual(defaults);
    expect(await parseWithLo(agentArgv({ port: 1, peers: [] }))).toEqual({ ...defaults, port: 1 });
  });

  it('p2p.resolveTags: off by default, true for every mirrored registry, or a list of them; others are refused', async () => {
    const specWith = (p2p: string): ReturnType<typeof parseSpec> =>
      parseSpec(
        `apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: opt\nspec:\n  nodes:\n    workers: 1\n  registries:\n    p2p:\n${p2p}`,
        { file: 'opt.yaml' },
      );
    const tagsOf = (p2p: string): string[] =>
      planCluster(specWith(p2p), { paths: { stateDir: '/s', caRoot: '/c' } }).p2p.agents[0]!.options.resolveTags ?? [];
    expect(tagsOf('      enabled: true\n')).toEqual([]);
    expect(tagsOf('      resolveTags: true\n')).toEqual(['docker.io', 'ghcr.io', 'quay.io', 'registry.k8s.io']);
    expect(tagsOf('      resolveTags: [quay.io, docker.io]\n')).toEqual(['docker.io', 'quay.io']);
    const a = planCluster(specWith('      resolveTags: [quay.io]\n'), { paths: { stateDir: '/s', caRoot: '/c' } }).p2p.agents[0]!;
    expect(a.command).toContain('--resolve-tags');
    expect((await parseWithLo(a.command.slice(2))).resolveTags).toEqual(['quay.io']);
    expect(() => specWith('      resolveTags: [example.com]\n')).toThrow(/resolveTags\[0\].*"example\.com" is not a mirrored registry/s);
    // one issue for a field with alternatives, in the user's words
    const err = (() => {
      try {
        specWith('      resolveTags: yes please\n');
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('accepted');
    })();
    expect(err.issues.map((i) => [i.path, i.message])).toEqual([
      ['spec.registries.p2p.resolveTags', 'must be true or false, or a list (- item lines), got string "yes please"'],
    ]);
    expect(err.issues[0]!.hint).toContain('[docker.io]');
  });

  it("every planned agent's command parses back to its options", async () => {
    const spec = parseSpec(
      'apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: opt\nspec:\n  nodes:\n    workers: 2\n  registries:\n    p2p:\n      resolveLatest: true\n',
      { file: 'opt.yaml' },
    );
    const plan = planCluster(spec, { paths: { stateDir: '/s', caRoot: '/c' } });
    expect(plan.p2p.agents.map((a) => a.node)).toEqual(['opt-control-plane', 'opt-worker', 'opt-worker2']);
    for (const a of plan.p2p.agents) {
      expect(a.command.slice(0, 2)).toEqual(['p2p', 'agent']);
      const parsed = await parseWithLo(a.command.slice(2));
      expect(Object.fromEntries(Object.keys(a.options).map((k) => [k, parsed[k as keyof AgentOptions]]))).toEqual(a.options);
      expect(parsed.peers).toEqual(plan.p2p.agents.filter((o) => o !== a).map((o) => `${o.node}:${plan.p2p.routerPort}`));
    }
  });

  it('environment variables give the defaults; a bad number in one is a usage error', () => {
    const cmd = addAgentOptions(new Command('agent'), { LO_P2P_PORT: '40000', LO_P2P_PEERS: 'a:1,b:2', LO_P2P_RESOLVE_LATEST: 'true' });
    cmd.parse([], { from: 'user' });
    expect(cmd.opts()).toMatchObject({ port: 40000, peers: ['a:1', 'b:2'], resolveLatest: true });
    expect(() => addAgentOptions(new Command('agent'), { LO_P2P_PORT: 'x' })).toThrow(/LO_P2P_PORT must be a non-negative integer/);
  });

  it('rejects a non-numeric port on the command line', async () => {
    const program = await buildProgram('p2p');
    program.commands.forEach((c) =>
      c
        .exitOverride()
        .configureOutput({ writeErr: () => {} })
        .commands.forEach((s) => s.exitOverride().configureOutput({ writeErr: () => {} })),
    );
    program.configureOutput({ writeErr: () => {} });
    await expect(program.parseAsync(['node', 'lo', 'p2p', 'agent', '--port', 'abc'])).rejects.toThrow(/non-negative integer/);
  });
});
