import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { main } from '../../src/cli/main.js';

const FIXTURES = new URL('../fixtures/k3s/', import.meta.url).pathname;
let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'lo-registries-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** `lo …` in-process with captured streams and an unreachable engine. */
async function lo(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const text = { out: '', err: '' };
  const sink = (k: 'out' | 'err') =>
    new Writable({
      write(chunk: Buffer | string, _enc, cb) {
        text[k] += String(chunk);
        cb();
      },
    });
  const env = { LO_STATE_DIR: join(tmp, 'state'), CAROOT: join(tmp, 'ca'), DOCKER_HOST: `unix://${join(tmp, 'no-docker.sock')}` };
  const code = await main(['node', 'lo', ...argv], env, { stdout: sink('out'), stderr: sink('err'), stdin: new PassThrough() });
  return { code, ...text };
}

/** A spec file `file` of project `name` (TLS off, its own subnet) whose spec.registries.hosts is `hosts` (YAML, 6 spaces in). */
async function hostsSpec(file: string, name: string, cidr: string, hosts: string): Promise<string> {
  const head = `apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata: { name: ${name} }\nspec:\n  cluster: { domain: ${name}.test }\n`;
  await writeFile(file, `${head}  network: { name: ${name}, cidr: ${cidr} }\n  registries:\n    tls: false\n    hosts:\n${hosts}`);
  return file;
}

describe('lo registries import / export (CLI)', () => {
  it("import prints spec.registries for K3s's documented example, naming the variable to set", async () => {
    const r = await lo(['registries', 'import', join(FIXTURES, 'with-tls-auth.yaml')]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/# {3}LO_REGISTRY_EXAMPLE_COM_5000_AUTH: Basic/);
    expect(r.out).not.toMatch(/xxxxxx/);
    const doc = parseYaml(r.out) as { spec: { registries: { hosts: Record<string, unknown> } } };
    expect(Object.keys(doc.spec.registries.hosts)).toEqual(['docker.io']);
  });

  it('import of a bad file exits 2 with the line and YAML path (also as JSON)', async () => {
    const bad = join(tmp, 'bad.yaml');
    await writeFile(bad, 'mirrors:\n  docker.io:\n    endpoint: 5\n');
    const r = await lo(['registries', 'import', bad, '--json']);
    expect(r.code).toBe(2);
    const err = (JSON.parse(r.out) as { error: { code: string; issues: Array<{ line: number; path: string }> } }).error;
    expect(err.code).toBe('E_CONFIG');
    expect(err.issues).toEqual([expect.objectContaining({ line: 3, path: 'mirrors["docker.io"].endpoint' })]);
    expect((await lo(['registries', 'import', join(tmp, 'absent.yaml')])).code).toBe(2);
  });

  it('--write into the built-in default is refused: there is no file, and nothing is created', async () => {
    const cwd = process.cwd();
    process.chdir(tmp);
    try {
      const r = await lo(['registries', 'import', join(FIXTURES, 'rewrite.yaml'), '--write']);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/no spec file to write into/);
    } finally {
      process.chdir(cwd);
    }
  });

  it('export refuses an unknown format and containerd without --out (exit 2); k3s prints a registries.yaml', async () => {
    expect((await lo(['registries', 'export', '--format', 'bogus'])).code).toBe(2);
    const noOut = await lo(['registries', 'export', '--format', 'containerd']);
    expect(noOut.code).toBe(2);
    expect(noOut.err).toMatch(/needs --out DIR/);
    const k3s = await lo(['registries', 'export']);
    expect(k3s.code, k3s.err).toBe(0);
    expect(Object.keys(parseYaml(k3s.out) as object)).toEqual(['mirrors', 'configs']);
    expect(k3s.err).toMatch(/^note the nodes need lo's CA/m);
  });

  it('export --format k3s --out FILE writes only that file', async () => {
    const file = join(tmp, 'out-registries.yaml');
    const r = await lo(['registries', 'export', '--out', file]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe(`wrote ${file} (0644)\n`);
    expect(await readFile(file, 'utf8')).toMatch(/^# K3s registries\.yaml for lo project lok8s/);
  });

  it("export --format docker --out DIR copies each endpoint's CA and client pair into certs.d/<host:port> (key 0600)", async () => {
    const dir = join(tmp, 'docker-export');
    await mkdir(join(dir, 'pki'), { recursive: true });
    for (const [f, text] of [
      ['ca.pem', 'CA PEM\n'],
      ['client.pem', 'CLIENT CERT PEM\n'],
      ['client-key.pem', 'CLIENT KEY PEM\n'],
    ] as const)
      await writeFile(join(dir, 'pki', f), text);
    const spec = await hostsSpec(
      join(dir, 'cluster.lok8s.yaml'),
      'dockex',
      '10.140.94.0/24',
      `      secure.corp.test:
        endpoints:
          - url: https://secure.corp.test:5000
            tls: { caFile: pki/ca.pem, certFile: pki/client.pem, keyFile: pki/client-key.pem }
            headers: { Authorization: { env: SECURE_AUTH } }
`,
    );
    const out = join(dir, 'out');
    const r = await lo(['--config', spec, 'registries', 'export', '--format', 'docker', '--out', out, '--json']);
    expect(r.code, r.err).toBe(0);
    const doc = JSON.parse(r.out) as { written: Array<{ path: string; mode: string }>; notes: string[] };
    const host = join(out, 'certs.d', 'secure.corp.test:5000');
    expect(doc.written.filter((w) => w.path.startsWith(host))).toEqual([
      { path: join(host, 'ca.crt'), mode: '0644' },
      { path: join(host, 'client.cert'), mode: '0644' },
      { path: join(host, 'client.key'), mode: '0600' },
    ]);
    expect((await stat(join(host, 'client.key'))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(host, 'client.key'), 'utf8')).toBe('CLIENT KEY PEM\n');
    expect(await readFile(join(host, 'ca.crt'), 'utf8')).toBe('CA PEM\n');
    expect(doc.notes.join('\n')).toContain('log in with `docker login secure.corp.test:5000` instead');
  });

  it('an endpoint with insecureSkipVerify is warned about on every run (lo plan, lo registries export), on stderr', async () => {
    const spec = await hostsSpec(
      join(tmp, 'skip-verify.lok8s.yaml'),
      'skipv',
      '10.140.95.0/24',
      `      ghcr.io:
        endpoints:
          - url: https://g.corp.example
            tls: { insecureSkipVerify: true }
`,
    );
    for (const args of [['plan'], ['plan', '--json'], ['registries', 'export', '--format', 'k3s']]) {
      const r = await lo(['--config', spec, ...args]);
      expect(r.code, r.err).toBe(0);
      expect(r.err).toMatch(
        /^warning spec\.registries\.hosts\["ghcr\.io"\]\.endpoints\[0\]: insecureSkipVerify: containerd does not verify/m,
      );
    }
  });

  it('--write merges into the spec file, keeping its comments; a second run replaces the entry and says so', async () => {
    const spec = join(tmp, 'cluster.lok8s.yaml');
    const original = `# my project
apiVersion: cluster.lok8s.dev/v1beta1
kind: Lo
metadata:
  name: lok8s # kind cluster name
spec:
  cluster:
    domain: lok8s.dev
  registries:
    tls: true # keep HTTPS
`;
    await writeFile(spec, original, { mode: 0o640 });
    const r = await lo(['--config', spec, 'registries', 'import', join(FIXTURES, 'with-tls-auth.yaml'), '--write']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^merged spec\.registries\.hosts docker\.io into /);
    expect(r.out).toMatch(/^set LO_REGISTRY_EXAMPLE_COM_5000_AUTH: Basic/m);
    const text = await readFile(spec, 'utf8');
    for (const comment of ['# my project', '# kind cluster name', '# keep HTTPS']) expect(text).toContain(comment);
    expect(text).not.toMatch(/xxxxxx/);
    const { parseSpec } = await import('../../src/spec/parseSpec.js');
    const parsed = parseSpec(text, { file: spec });
    expect(parsed.registries.hosts['docker.io']!.endpoints).toEqual([
      expect.objectContaining({
        url: 'https://registry.example.com:5000',
        headers: { Authorization: { env: 'LO_REGISTRY_EXAMPLE_COM_5000_AUTH' } },
      }),
    ]);
    expect((await import('node:fs')).statSync(spec).mode & 0o777).toBe(0o640);

    const again = await lo(['--config', spec, 'registries', 'import', join(FIXTURES, 'rewrite.yaml'), '--write']);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toMatch(/^replaced the entries for docker\.io$/m);
    expect(again.out).not.toMatch(/left out/);
    const merged = parseSpec(await readFile(spec, 'utf8'), { file: spec }).registries.hosts['docker.io']!;
    expect(merged.endpoints.map((e) => e.headers)).toEqual([{}]);
    expect(merged.rewrites).toEqual([{ pattern: '^rancher/(.*)', replacement: 'mirrorproject/rancher-images/$1' }]);
  });

  it('--write leaves the spec file alone when lo would refuse the merged file (exit 2)', async () => {
    const spec = join(tmp, 'refuse.yaml');
    const original =
      'apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: lok8s\nspec:\n  cluster:\n    domain: lok8s.dev\n';
    await writeFile(spec, original);
    const k3s = join(tmp, 'own-name.yaml');
    await writeFile(k3s, 'mirrors:\n  lok8s.local:\n    endpoint: [https://elsewhere.example]\n');
    const r = await lo(['--config', spec, 'registries', 'import', k3s, '--write']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/lok8s\.local/);
    expect(await readFile(spec, 'utf8')).toBe(original);
  });

  it('--write gives a lo mirror of a configs host its CA and credential variable names; what registry:2 cannot do is named', async () => {
    const spec = join(tmp, 'mirror.yaml');
    await writeFile(
      spec,
      `apiVersion: cluster.lok8s.dev/v1beta1
kind: Lo
metadata:
  name: lok8s
spec:
  cluster:
    domain: lok8s.dev
  registries:
    mirrors:
      - name: corp # the team's Harbor
        url: https://harbor.corp.example
        registry: harbor.corp.example
`,
    );
    const k3s = join(tmp, 'harbor.yaml');
    await writeFile(
      k3s,
      `configs:
  harbor.corp.example:
    auth: { username: robot, password: s3cr3t-pass }
    tls: { ca_file: /etc/ssl/corp-ca.pem, cert_file: /etc/ssl/c.pem, key_file: /etc/ssl/c.key }
`,
    );
    const r = await lo(['--config', spec, 'registries', 'import', k3s, '--write']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^mirror corp \(upstream harbor\.corp\.example\): set tls\.caFile, credentials$/m);
    expect(r.out).toMatch(/^mirror corp: left tls\.certFile\/keyFile: registry:2 cannot/m);
    expect(r.out).toMatch(/^set LO_HARBOR_CORP_EXAMPLE_PASSWORD: the password of configs\["harbor\.corp\.example"\]\.auth/m);
    const text = await readFile(spec, 'utf8');
    expect(text).toContain('# the team');
    expect(text).not.toMatch(/s3cr3t|robot/);
    const { parseSpec } = await import('../../src/spec/parseSpec.js');
    const corp = parseSpec(text, { file: spec }).registries.mirrors[0]!;
    expect(corp.credentials).toEqual({ usernameEnv: 'LO_HARBOR_CORP_EXAMPLE_USER', passwordEnv: 'LO_HARBOR_CORP_EXAMPLE_PASSWORD' });
    expect(corp.tls?.caFile).toBe('/etc/ssl/corp-ca.pem');
  });
});
