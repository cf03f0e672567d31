import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDirs } from '../support/tempDirs.js';
import { parse } from 'yaml';
import { SPEC_AJV_OPTIONS, validateSchema } from '../../src/spec/validator.js';

const REPO = resolve(import.meta.dirname, '..', '..');
const run = promisify(execFile);

interface BundleScript {
  standaloneSpecValidator(options: unknown): Promise<string>;
}

const tempDir = tempDirs();

const view = (errors: ErrorObject[] | null | undefined): unknown =>
  (errors ?? []).map((e) => ({ instancePath: e.instancePath, keyword: e.keyword, params: e.params, message: e.message, data: e.data }));

describe('the precompiled (ajv standalone) spec validator the bundle ships', () => {
  let precompiled: ValidateFunction;
  beforeAll(async () => {
    const script = (await import(pathToFileURL(join(REPO, 'scripts', 'bundle.js')).href)) as BundleScript;
    const code = await script.standaloneSpecValidator(SPEC_AJV_OPTIONS);
    const dir = await tempDir('lo-standalone-');
    const file = join(dir, 'validator.mjs');
    const req = `import { createRequire } from 'node:module'; const require = createRequire(${JSON.stringify(join(REPO, 'package.json'))});\n`;
    await writeFile(file, req + code);
    precompiled = ((await import(pathToFileURL(file).href)) as { default: ValidateFunction }).default;
  });

  const specs: Record<string, unknown> = {
    'the shipped default spec': parse(readFileSync(join(REPO, 'clusters', 'lok8s.dev', 'cluster.lok8s.yaml'), 'utf8')),
    'a minimal spec (defaults filled in)': { apiVersion: 'cluster.lok8s.dev/v1beta1', kind: 'Lo', metadata: { name: 'x' } },
    'a spec with errors': {
      apiVersion: 'cluster.lok8s.dev/v1beta1',
      kind: 'Lo',
      metadata: { name: 'x' },
      spec: { cluster: { domain: 3 }, bogus: 1, registries: { mirrors: [{ name: 7 }] } },
    },
  };
  for (const [name, doc] of Object.entries(specs)) {
    it(`${name}: same verdict, same errors, same defaults as compiling at run time`, () => {
      const a = structuredClone(doc);
      const b = structuredClone(doc);
      const va = validateSchema(a);
      const vb = precompiled(b);
      expect(vb).toBe(va);
      expect(view(precompiled.errors)).toEqual(view(validateSchema.errors));
      expect(b).toEqual(a);
    });
  }
  it('the cases differ (the comparison could fail)', () => {
    const bad = structuredClone(specs['a spec with errors']);
    expect(precompiled(bad)).toBe(false);
    expect(precompiled.errors?.length).toBeGreaterThan(1);
    const min = structuredClone(specs['a minimal spec (defaults filled in)']) as Record<string, unknown>;
    expect(precompiled(min)).toBe(true);
    expect(Object.keys(min)).toContain('spec'); // defaults written into the document
  });
});

describe('npm pack: the packed package runs from an install', () => {
  let prefix = '';
  beforeAll(async () => {
    if (!existsSync(join(REPO, 'dist', 'bundle', 'lo.cjs'))) await run('npm', ['run', 'build'], { cwd: REPO, maxBuffer: 16 << 20 });
    const packDir = await tempDir('lo-pack-');
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', packDir], { cwd: REPO, maxBuffer: 16 << 20 });
    const tarball = join(packDir, (JSON.parse(stdout) as Array<{ filename: string }>)[0]!.filename);
    // Installed as npm lays it out: the package under node_modules/lo, its dependencies hoisted beside it. This
    // machine has no registry: the dependencies are links to this checkout's node_modules (what npm would fetch).
    prefix = await tempDir('lo-install-');
    const pkgDir = join(prefix, 'node_modules', 'lo');
    await mkdir(pkgDir, { recursive: true });
    await run('tar', ['-xzf', tarball, '-C', pkgDir, '--strip-components=1']);
    for (const name of readdirSync(join(REPO, 'node_modules'))) {
      if (name.startsWith('.') || name === 'lo') continue;
      await symlink(join(REPO, 'node_modules', name), join(prefix, 'node_modules', name));
    }
    await mkdir(join(prefix, 'node_modules', '.bin'), { recursive: true });
    await symlink(join(pkgDir, 'bin', 'lo.js'), join(prefix, 'node_modules', '.bin', 'lo-packed'));
  }, 180_000);

  it('holds the bundle and not the sources', () => {
    const pkgDir = join(prefix, 'node_modules', 'lo');
    expect(existsSync(join(pkgDir, 'dist', 'bundle', 'lo.cjs'))).toBe(true);
    // the agent image's content (src/apply/agentImage.ts): the agent bundle and the protos beside it
    expect(readdirSync(join(pkgDir, 'dist', 'bundle', 'agent'), { recursive: true }).sort()).toEqual([
      'agent.mjs',
      'proto',
      'proto/content.proto',
      'proto/events.proto',
      'proto/images.proto',
    ]);
    expect(existsSync(join(pkgDir, 'schemas', 'cluster.lok8s.schema.json'))).toBe(true);
    expect(existsSync(join(pkgDir, 'src'))).toBe(false);
  });

  it('`lo --help` and `lo plan --json` run from the installed package', async () => {
    const cwd = await tempDir('lo-packed-cwd-');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      LO_STATE_DIR: join(cwd, 'state'),
      CAROOT: join(cwd, 'caroot'),
      XDG_CACHE_HOME: join(cwd, 'cache'),
    };
    delete env.LO_COMPILE_CACHE;
    const lo = join(prefix, 'node_modules', '.bin', 'lo-packed');
    const help = await run(process.execPath, [lo, '--help'], { cwd, env });
    expect(help.stdout).toContain('Usage: lo');
    expect(help.stdout).toContain('registry');
    // the run wrote its V8 code cache; the next run, compiled from it, prints the same help
    const builds = readdirSync(join(cwd, 'cache', 'lo', 'v8'));
    expect(builds).toHaveLength(1);
    expect(readdirSync(join(cwd, 'cache', 'lo', 'v8', builds[0]!))).toEqual(['root.bin']);
    expect((await run(process.execPath, [lo, '--help'], { cwd, env })).stdout).toBe(help.stdout);
    const version = await run(process.execPath, [lo, '--version'], { cwd, env });
    expect(version.stdout.trim()).toBe((JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version);
    const plan = await run(process.execPath, [lo, 'plan', '--json'], { cwd, env });
    const doc = JSON.parse(plan.stdout) as { registries: Array<{ ip: string }> };
    expect(doc.registries.map((r) => r.ip)).toContain('10.125.125.101');
    // A bad spec is still rejected by the precompiled validator, with the YAML line.
    await writeFile(join(cwd, 'bad.yaml'), 'apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata: {name: x}\nspec:\n  bogus: 1\n');
    const bad = await run(process.execPath, [lo, 'plan', '--config', 'bad.yaml'], { cwd, env }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('bad.yaml:5: spec.bogus: unknown field "bogus"');
  });
});
