import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildProgram, main } from '../../src/cli/main.js';
import type { Plan } from '../../src/plan/types.js';

const REPO = resolve(import.meta.dirname, '..', '..');
const run = promisify(execFile);

let tmp: string;
let cwd: string;
let stateDir: string;
let caRoot: string;
const savedEnv = { ...process.env };
const savedCwd = process.cwd();

/** Runs `lo ...argv` in-process with cwd = an empty temp dir; returns exit code, stdout and stderr. */
async function lo(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((out += String(chunk)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((err += String(chunk)), true));
  try {
    const code = await main(['node', 'lo', ...argv]);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'lo-h2-cli-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});
beforeEach(async () => {
  cwd = await mkdtemp(join(tmp, 'cwd-'));
  stateDir = await mkdtemp(join(tmp, 'state-'));
  caRoot = await mkdtemp(join(tmp, 'ca-'));
  process.env.LO_STATE_DIR = stateDir;
  process.env.CAROOT = caRoot;
  // No Docker engine here: `lo plan` sees an empty machine, so the addresses are the documented defaults.
  process.env.DOCKER_HOST = `unix://${join(tmp, 'no-docker.sock')}`;
  delete process.env.LO_EXTRA_LABELS;
  process.chdir(cwd);
});
afterEach(() => {
  process.chdir(savedCwd);
  process.env = { ...savedEnv };
});

describe('lo plan', () => {
  it('--json for the built-in default: build .101, cache .102, mirrors 10.125.200.2-5', async () => {
    const { code, out } = await lo('plan', '--json');
    expect(code).toBe(0);
    const plan = JSON.parse(out) as Plan;
    expect(plan.apiVersion).toBe('lo.lok8s.dev/plan/v1');
    expect(plan.project).toMatchObject({ name: 'lok8s', domain: 'lok8s.dev', slot: 125, file: '<built-in lok8s.dev>' });
    const at = (role: string) => plan.registries.filter((r) => r.role === role).map((r) => r.ip);
    expect(at('build')).toEqual(['10.125.125.101']);
    expect(at('cache')).toEqual(['10.125.125.102']);
    expect(plan.registries.filter((r) => r.role === 'mirror').map((r) => [r.registry, r.ip])).toEqual([
      ['docker.io', '10.125.200.2'],
      ['quay.io', '10.125.200.3'],
      ['registry.k8s.io', '10.125.200.4'],
      ['ghcr.io', '10.125.200.5'],
    ]);
    expect(plan.paths.stateDir).toBe(stateDir);
    expect(plan.tls.caRoot).toBe(caRoot);
    // Planning writes nothing.
    expect(await readdir(stateDir)).toEqual([]);
    expect(await readdir(caRoot)).toEqual([]);
    expect(await readdir(cwd)).toEqual([]);
  });

  it('prints a readable summary without --json, and hosts.toml with --hosts', async () => {
    const { code, out } = await lo('plan', '--hosts');
    expect(code).toBe(0);
    expect(out).toMatch(/build +lok8s-registry-build +https:\/\/10\.125\.125\.101/);
    expect(out).toMatch(/mirror +lok8s-registry-io-ghcr +https:\/\/10\.125\.200\.5 .*ghcr\.io <- https:\/\/ghcr\.io/);
    expect(out).toContain('--- docker.io/hosts.toml');
    expect(out).toContain('server = "https://registry-1.docker.io"');
  });

  it('reads clusters/<domain>/cluster.lok8s.yaml for a domain argument', async () => {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(cwd, 'clusters', '50.lok8s.dev'), { recursive: true });
    await writeFile(
      join(cwd, 'clusters', '50.lok8s.dev', 'cluster.lok8s.yaml'),
      'apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: p50\n',
    );
    const { code, out } = await lo('plan', '50.lok8s.dev', '--json');
    expect(code).toBe(0);
    const plan = JSON.parse(out) as Plan;
    expect(plan.registries.find((r) => r.role === 'build')!.ip).toBe('10.125.50.101');
    expect(plan.project).toMatchObject({ name: 'p50', slot: 50 });
  });

  it('a bad spec exits 2, lists every problem with file and line, and changes nothing', async () => {
    await writeFile(
      join(cwd, 'bad.yaml'),
      'apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: x\nspec:\n  nodes:\n    workers: 100\n  colour: blue\n',
    );
    const { code, out, err } = await lo('plan', '--config', 'bad.yaml');
    expect(code).toBe(2);
    expect(out).toBe('');
    const file = join(cwd, 'bad.yaml');
    expect(err).toContain(`${file}:7: spec.nodes.workers: 100 is out of range (maximum 99) (fix: use 0 to 99 workers)`);
    expect(err).toContain(`${file}:8: spec.colour: unknown field "colour"`);
    expect(await readdir(stateDir)).toEqual([]);
    expect(await readdir(caRoot)).toEqual([]);
    expect(await readdir(cwd)).toEqual(['bad.yaml']);
  });

  it('with --json a bad spec prints one JSON error document with every issue', async () => {
    await writeFile(join(cwd, 'bad.yaml'), 'apiVersion: v2\nkind: Lo\nmetadata:\n  name: x\n');
    const { code, out } = await lo('plan', '--config', 'bad.yaml', '--json');
    expect(code).toBe(2);
    const doc = JSON.parse(out) as { error: { code: string; exitCode: number; issues: Array<Record<string, unknown>> } };
    expect(doc.error.code).toBe('E_CONFIG');
    expect(doc.error.exitCode).toBe(2);
    expect(doc.error.issues).toEqual([
      {
        file: join(cwd, 'bad.yaml'),
        path: 'apiVersion',
        line: 1,
        message: 'must be "cluster.lok8s.dev/v1beta1"',
        hint: 'write "cluster.lok8s.dev/v1beta1"',
      },
    ]);
  });

  it('a domain without a spec file exits 2 with a hint', async () => {
    const { code, err } = await lo('plan', '77.lok8s.dev');
    expect(code).toBe(2);
    expect(err).toContain(join(cwd, 'clusters', '77.lok8s.dev', 'cluster.lok8s.yaml'));
    expect(err).toMatch(/hint/);
  });

  it('an unknown option exits 2', async () => {
    const { code, err } = await lo('plan', '--bogus');
    expect(code).toBe(2);
    expect(err).toContain("unknown option '--bogus'");
  });
});

describe('help', () => {
  /** Every option of a command appears in its help with its description. */
  function expectDescribes(help: string, cmd: Command): void {
    const normal = help.replace(/\s+/g, ' ');
    for (const o of cmd.options) {
      expect(help).toContain(o.flags);
      expect(o.description.length).toBeGreaterThan(5);
      expect(normal).toContain(o.description.replace(/\s+/g, ' '));
    }
  }

  it('lo --help describes every global option and every command', async () => {
    const { code, out } = await lo('--help');
    expect(code).toBe(0);
    const program = await buildProgram();
    expectDescribes(out, program);
    expect(program.options.map((o) => o.long)).toEqual(expect.arrayContaining(['--version', '--config']));
    expect(out).toContain('-h, --help');
    for (const c of program.commands) {
      expect(out).toContain(c.name());
      expect(c.description().length).toBeGreaterThan(5);
    }
  });

  it('lo plan --help describes --json, --hosts, --config and the domain argument', async () => {
    const { code, out } = await lo('plan', '--help');
    expect(code).toBe(0);
    const program = await buildProgram();
    const planCmd = program.commands.find((c) => c.name() === 'plan')!;
    expectDescribes(out, planCmd);
    expectDescribes(out, program);
    expect(planCmd.options.map((o) => o.long)).toEqual(['--json', '--hosts']);
    expect(out).toContain('domain');
    expect(out).toContain('clusters/<domain>/cluster.lok8s.yaml');
    expect(out).toContain('docs/plan-json.md');
  });
});

describe('bin/lo.js (built)', () => {
  beforeAll(async () => {
    // `npm test` builds first; a bare `vitest run` on a fresh checkout builds here (tsc emits even if
    // another file has a type error).
    if (!existsSync(join(REPO, 'dist', 'cli', 'main.js')))
      await run('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: REPO }).catch(() => undefined);
    // bin/lo.js runs the bundle (scripts/bundle.js, the second step of `npm run build`).
    if (!existsSync(join(REPO, 'dist', 'bundle', 'main.js')))
      await run(process.execPath, [join(REPO, 'scripts', 'bundle.js')], { cwd: REPO });
  }, 120_000);

  it('exits 2 on a bad spec as a real process and leaves the state dir empty', async () => {
    await writeFile(join(cwd, 'bad.yaml'), '- just\n- a list\n');
    const result = await run(process.execPath, [join(REPO, 'bin', 'lo.js'), 'plan', '--config', 'bad.yaml'], {
      cwd,
      env: { ...process.env, LO_STATE_DIR: stateDir, CAROOT: caRoot },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${join(cwd, 'bad.yaml')}:1: expected a mapping`);
    expect(await readdir(stateDir)).toEqual([]);
    expect(await readdir(caRoot)).toEqual([]);
  });

  it('the light bundle (plan, help, version) is a fraction of the whole one and runs each of its command lines', async () => {
    const size = (f: string): number => statSync(join(REPO, 'dist', 'bundle', f)).size;
    expect(size('lo-light.cjs')).toBeLessThan(size('lo.cjs') / 2);
    // nor what only applying commands load (esbuild names each bundled module in a comment); ora only with a terminal
    const light = readFileSync(join(REPO, 'dist', 'bundle', 'lo-light.cjs'), 'latin1');
    expect(readFileSync(join(REPO, 'dist', 'bundle', 'lo.cjs'), 'latin1')).toContain('node_modules/node-forge/');
    for (const dep of ['ora', 'node-forge', 'execa', 'dockerode', 'docker-modem']) expect(light).not.toContain(`node_modules/${dep}/`);
    const env = { ...process.env, LO_STATE_DIR: stateDir, CAROOT: caRoot };
    const bin = (args: string[]) => run(process.execPath, [join(REPO, 'bin', 'lo.js'), ...args], { cwd, env });
    expect((await bin(['--help'])).stdout).toContain('registry');
    expect((await bin(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect((await bin(['plan', '--help'])).stdout).toContain('--hosts');
    const hosts = (await bin(['plan', '--hosts'])).stdout;
    expect(hosts).toContain('hosts.toml');
    expect(hosts).toContain('server = ');
    // the same plan as the whole bundle's tsc output computes in-process
    const { stdout } = await bin(['plan', '--json']);
    const inProcess = await lo('plan', '--json');
    expect(inProcess.code).toBe(0);
    expect(JSON.parse(stdout)).toEqual(JSON.parse(inProcess.out));
    // a DOCKER_HOST that is not a unix socket: plan's lookup goes through dockerode, required from node_modules
    const tcp = await run(process.execPath, [join(REPO, 'bin', 'lo.js'), 'plan', '--json'], {
      cwd,
      env: { ...env, DOCKER_HOST: 'tcp://127.0.0.1:1' },
    });
    expect(JSON.parse(tcp.stdout)).toEqual(JSON.parse(stdout));
    // a command outside it still runs (the whole bundle)
    expect((await bin(['registry', '--help'])).stdout).toContain('status');
  });

  it('prints the default plan as a real process', async () => {
    const { stdout } = await run(process.execPath, [join(REPO, 'bin', 'lo.js'), 'plan', '--json'], {
      cwd,
      env: { ...process.env, LO_STATE_DIR: stateDir, CAROOT: caRoot },
    });
    const plan = JSON.parse(stdout) as Plan;
    expect(plan.registries.map((r) => r.ip)).toEqual([
      '10.125.125.101',
      '10.125.125.102',
      '10.125.200.2',
      '10.125.200.3',
      '10.125.200.4',
      '10.125.200.5',
    ]);
  });
});
