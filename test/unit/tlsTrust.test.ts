import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { caUniqueName, loadCa } from '../../src/apply/tls/ca.js';
import { ensureTls } from '../../src/apply/tls/ensureTls.js';
import { checkTrust, dockerTrustHosts, type TrustReport } from '../../src/adapters/trust/check.js';
import { defaultTrustEnv, runCommand, type TrustEnv } from '../../src/adapters/trust/stores.js';
import { trustCa, untrustCa } from '../../src/usecases/trust.js';
import { TlsError } from '../../src/apply/tls/tlsError.js';
import { makeMkcertStyleCa, specYaml, tempDir, tlsPlan, type TlsSpecInput } from '../helpers/tls.js';

const SPEC: TlsSpecInput = {
  name: 'lotls-t1',
  cidr: '10.150.20.0/24',
  sharedName: 'lotls-t1-sh',
  sharedCidr: '10.150.21.0/24',
  mirrors: [],
};

/** A Debian-like trust store in temp dirs; the update command is a real process that rebuilds the bundle. */
function tempEnv(root: string): TrustEnv & { anchorDir: string; bundle: string; dockerDir: string } {
  const anchorDir = join(root, 'anchors');
  const bundle = join(root, 'bundle', 'ca-certificates.crt');
  const dockerDir = join(root, 'docker-certs.d');
  mkdirSync(anchorDir, { recursive: true });
  mkdirSync(join(root, 'bundle'), { recursive: true });
  writeFileSync(bundle, '');
  return {
    anchorDir,
    bundle,
    dockerDir,
    systemStore: {
      kind: 'anchors',
      name: 'debian',
      anchorDir,
      extension: '.crt',
      bundlePaths: [bundle],
      updateCommand: ['sh', '-c', 'for f in "$0"/*.crt; do [ -e "$f" ] && cat "$f"; done > "$1"; true', anchorDir, bundle],
    },
    dockerCertsDir: dockerDir,
    run: runCommand,
    isRoot: true,
  };
}

function mtimes(paths: string[]): Record<string, number> {
  return Object.fromEntries(paths.map((p) => [p, statSync(p).mtimeMs]));
}

describe('lo trust core with temp trust stores', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());
  const plan = tlsPlan(t.dir, SPEC);
  const env = tempEnv(t.dir);

  it('the Docker hosts are the build and cache addresses and hostnames', () => {
    expect(dockerTrustHosts(plan).sort()).toEqual(['10.150.20.101', '10.150.20.102', 'lok8s.cache', 'lok8s.local']);
  });

  it('reports the CA as missing before it exists and creates nothing when checking', async () => {
    const r = await checkTrust(plan, { env });
    expect(r.trusted).toBe(false);
    // every change is listed even before the CA exists
    expect(r.items.map((i) => [i.id, i.state])).toEqual([
      ['ca', 'missing'],
      ['system', 'missing'],
      ...dockerTrustHosts(plan).map((h) => [`docker:${h}`, 'missing']),
    ]);
    const update = env.systemStore?.kind === 'anchors' ? env.systemStore.updateCommand.join(' ') : '';
    expect(r.items.find((i) => i.id === 'system')!.change).toBe(
      `write ${join(env.anchorDir, 'mkcert_development_CA_<serial>.crt')}, then run ${update} (system store: debian)`,
    );
    expect(existsSync(plan.tls.caCertPath)).toBe(false);
  });

  it('a declined confirmation changes nothing', async () => {
    await ensureTls(plan);
    const confirm = vi.fn(async () => false);
    const r = await trustCa(plan, { env, confirm });
    expect(confirm).toHaveBeenCalledOnce();
    expect(r.declined).toBe(true);
    expect(r.changed).toEqual([]);
    expect(readdirSync(env.anchorDir)).toEqual([]);
    expect(existsSync(env.dockerDir)).toBe(false);
  });

  let planned: TrustReport | undefined;
  it('says what it will change, then installs the CA in the system store and every Docker certs.d host', async () => {
    const ca = (await loadCa({ caRoot: plan.tls.caRoot, certPath: plan.tls.caCertPath, keyPath: plan.tls.caKeyPath }))!;
    const fileName = `${caUniqueName(ca.cert).replace(/ /g, '_')}.crt`;
    const r = await trustCa(plan, {
      env,
      confirm: async (report) => {
        planned = report;
        return true;
      },
    });
    // the plan of changes, shown before anything is written
    expect(planned!.trusted).toBe(false);
    expect(planned!.needsRoot).toBe(false);
    const changes = planned!.items.map((i) => i.change);
    expect(changes).toContain(
      `write ${join(env.anchorDir, fileName)}, then run ${env.systemStore && env.systemStore.kind === 'anchors' ? env.systemStore.updateCommand.join(' ') : ''} (system store: debian)`,
    );
    for (const h of dockerTrustHosts(plan)) expect(changes).toContain(`write ${join(env.dockerDir, h, 'ca.crt')}`);
    expect(planned!.missing.sort()).toEqual([
      'docker certs.d/10.150.20.101',
      'docker certs.d/10.150.20.102',
      'docker certs.d/lok8s.cache',
      'docker certs.d/lok8s.local',
      'system store',
    ]);

    // the result
    expect(r.changed.sort()).toEqual([
      'docker:10.150.20.101',
      'docker:10.150.20.102',
      'docker:lok8s.cache',
      'docker:lok8s.local',
      'system',
    ]);
    expect(r.after.trusted).toBe(true);
    const caPem = readFileSync(plan.tls.caCertPath, 'utf8');
    expect(readdirSync(env.anchorDir)).toEqual([fileName]);
    expect(fileName).toMatch(/^mkcert_development_CA_\d+\.crt$/);
    expect(readFileSync(join(env.anchorDir, fileName), 'utf8')).toBe(caPem);
    expect(readFileSync(env.bundle, 'utf8')).toContain(caPem.trim());
    for (const h of dockerTrustHosts(plan)) {
      const f = join(env.dockerDir, h, 'ca.crt');
      expect(readFileSync(f, 'utf8')).toBe(caPem);
      expect(statSync(f).mode & 0o777).toBe(0o644);
    }
    const check = await checkTrust(plan, { env });
    expect(check.trusted).toBe(true);
    expect(check.items.every((i) => i.state === 'trusted')).toBe(true);
  });

  it('is re-runnable: the second run asks nothing and touches nothing', async () => {
    const files = [
      env.bundle,
      ...readdirSync(env.anchorDir).map((f) => join(env.anchorDir, f)),
      ...dockerTrustHosts(plan).map((h) => join(env.dockerDir, h, 'ca.crt')),
    ];
    const before = mtimes(files);
    const confirm = vi.fn(async () => true);
    const r = await trustCa(plan, { env, confirm });
    expect(confirm).not.toHaveBeenCalled();
    expect(r.changed).toEqual([]);
    expect(mtimes(files)).toEqual(before);
  });

  it('replaces a Docker ca.crt that holds another CA and says so', async () => {
    const other = join(t.dir, 'otherca');
    mkdirSync(other);
    const o = makeMkcertStyleCa(other);
    const f = join(env.dockerDir, 'lok8s.local', 'ca.crt');
    writeFileSync(f, readFileSync(o.certPath));
    const r = await checkTrust(plan, { env });
    expect(r.trusted).toBe(false);
    expect(r.items.find((i) => i.id === 'docker:lok8s.local')).toMatchObject({
      state: 'different',
      change: `replace ${f} (it holds another CA)`,
    });
    const done = await trustCa(plan, { env });
    expect(done.changed).toEqual(['docker:lok8s.local']);
    expect(readFileSync(f, 'utf8')).toBe(readFileSync(plan.tls.caCertPath, 'utf8'));
  });

  it("--uninstall removes exactly what trust added for this CA and leaves another CA's certs.d entry alone", async () => {
    const hosts = dockerTrustHosts(plan);
    // lok8s.cache gets another CA's file: not ours, must stay.
    const foreign = join(env.dockerDir, 'lok8s.cache', 'ca.crt');
    const other = join(t.dir, 'otherca2');
    mkdirSync(other);
    writeFileSync(foreign, readFileSync(makeMkcertStyleCa(other).certPath));
    const planned: string[] = [];
    const u = await untrustCa(plan, { env, confirm: async (r) => (planned.push(...r.items.map((i) => i.change!)), true) });
    expect(planned.some((c) => c.startsWith(`remove ${env.anchorDir}/mkcert_development_CA_`))).toBe(true);
    expect(planned).not.toContain(`remove ${foreign}`);
    expect(u.removed.sort()).toEqual(['system', ...hosts.filter((h) => h !== 'lok8s.cache').map((h) => `docker:${h}`)].sort());
    expect(readdirSync(env.anchorDir)).toEqual([]);
    expect(readFileSync(env.bundle, 'utf8')).not.toContain(readFileSync(plan.tls.caCertPath, 'utf8').trim());
    for (const h of hosts.filter((x) => x !== 'lok8s.cache')) expect(existsSync(join(env.dockerDir, h))).toBe(false);
    expect(existsSync(foreign)).toBe(true);
    expect(existsSync(plan.tls.caCertPath)).toBe(true); // the CA stays
    // nothing left to remove: a second uninstall asks nothing
    const confirm = vi.fn(async () => true);
    expect((await untrustCa(plan, { env, confirm })).removed).toEqual([]);
    expect(confirm).not.toHaveBeenCalled();
    // and trust again restores everything
    const again = await trustCa(plan, { env });
    expect(again.after.trusted).toBe(true);
  });

  it('counts the CA as trusted when the bundle already holds it (e.g. after mkcert -install)', async () => {
    const t2 = tempDir();
    try {
      const p2 = tlsPlan(t2.dir, SPEC);
      const e2 = tempEnv(t2.dir);
      await ensureTls(p2);
      writeFileSync(e2.bundle, readFileSync(p2.tls.caCertPath));
      const r = await checkTrust(p2, { env: e2 });
      expect(r.items.find((i) => i.id === 'system')?.state).toBe('trusted');
    } finally {
      t2.cleanup();
    }
  });

  it('a failing update command is an error naming the command, and the CA is not reported trusted', async () => {
    const t3 = tempDir();
    try {
      const p3 = tlsPlan(t3.dir, SPEC);
      const e3 = tempEnv(t3.dir);
      if (e3.systemStore?.kind === 'anchors') e3.systemStore.updateCommand = ['sh', '-c', 'echo "cannot rebuild bundle" >&2; exit 3'];
      const err = await trustCa(p3, { env: e3 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TlsError);
      expect((err as TlsError).message).toMatch(/sh -c .* failed \(exit 3\): cannot rebuild bundle/);
      expect((await checkTrust(p3, { env: e3 })).items.find((i) => i.id === 'system')?.state).toBe('missing');
    } finally {
      t3.cleanup();
    }
  });

  it('TLS off: nothing to trust, nothing written', async () => {
    const t4 = tempDir();
    try {
      const p4 = tlsPlan(t4.dir, { ...SPEC, tls: false });
      const e4 = tempEnv(t4.dir);
      const r = await trustCa(p4, { env: e4 });
      expect(r.after).toMatchObject({ tls: false, trusted: true, items: [] });
      expect(existsSync(p4.tls.caCertPath)).toBe(false);
      expect(existsSync(e4.dockerDir)).toBe(false);
    } finally {
      t4.cleanup();
    }
  });
});

describe('defaultTrustEnv picks the platform stores like mkcert', () => {
  const has = (dirs: string[]) => async (p: string) => dirs.includes(p);
  it.each([
    ['debian', ['/usr/local/share/ca-certificates', '/etc/docker'], '/usr/local/share/ca-certificates', ['update-ca-certificates']],
    [
      'fedora',
      ['/etc/pki/ca-trust/source/anchors', '/usr/local/share/ca-certificates', '/etc/docker'],
      '/etc/pki/ca-trust/source/anchors',
      ['update-ca-trust', 'extract'],
    ],
    [
      'arch',
      ['/etc/ca-certificates/trust-source/anchors', '/etc/docker'],
      '/etc/ca-certificates/trust-source/anchors',
      ['trust', 'extract-compat'],
    ],
    ['suse', ['/usr/share/pki/trust/anchors', '/etc/docker'], '/usr/share/pki/trust/anchors', ['update-ca-certificates']],
  ] as const)('linux %s', async (name, dirs, anchorDir, updateCommand) => {
    const env = await defaultTrustEnv({ env: {}, platform: 'linux', exists: has([...dirs]) });
    expect(env.systemStore).toMatchObject({ kind: 'anchors', name, anchorDir, updateCommand });
    expect(env.dockerCertsDir).toBe('/etc/docker/certs.d');
  });
  it('linux without Docker: no certs.d; unknown store: null', async () => {
    const env = await defaultTrustEnv({ env: {}, platform: 'linux', exists: has([]) });
    expect(env.systemStore).toBeNull();
    expect(env.dockerCertsDir).toBeNull();
  });
  it('macOS: System keychain and ~/.docker/certs.d', async () => {
    const env = await defaultTrustEnv({ env: {}, platform: 'darwin', home: '/Users/u', exists: has(['/Users/u/.docker']) });
    expect(env.systemStore).toEqual({ kind: 'keychain', name: 'macos', keychain: '/Library/Keychains/System.keychain' });
    expect(env.dockerCertsDir).toBe('/Users/u/.docker/certs.d');
  });
});

describe('sudo lo trust creating the CA hands it to the invoking user', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());
  it('chowns CAROOT, rootCA.pem and rootCA-key.pem to $SUDO_UID/$SUDO_GID', async () => {
    const plan = tlsPlan(t.dir, SPEC);
    const env = { ...tempEnv(t.dir), sudoOwner: { uid: 65534, gid: 65534 } };
    const r = await trustCa(plan, { env });
    expect(r.changed).toContain('ca');
    for (const p of [plan.tls.caRoot, plan.tls.caCertPath, plan.tls.caKeyPath])
      expect(statSync(p)).toMatchObject({ uid: 65534, gid: 65534 });
    expect(statSync(plan.tls.caKeyPath).mode & 0o777).toBe(0o400);
  });
  it('reads SUDO_UID/SUDO_GID only when running as root', async () => {
    const env = await defaultTrustEnv({ platform: 'linux', env: { SUDO_UID: '1000', SUDO_GID: '1001' } });
    expect(env.sudoOwner).toEqual(process.getuid!() === 0 ? { uid: 1000, gid: 1001 } : undefined);
  });
});

describe('lo trust needs root: explained with the exact sudo command', () => {
  const t = tempDir();
  beforeAll(async () => {
    chmodSync(t.dir, 0o755);
    const { build } = await import('esbuild');
    await build({
      // The child needs the use case and the store's command runner.
      stdin: {
        contents: "export { trustCa } from './src/usecases/trust.ts'; export { runCommand } from './src/adapters/trust/stores.ts';",
        resolveDir: process.cwd(),
      },
      bundle: true,
      platform: 'node',
      format: 'cjs',
      outfile: join(t.dir, 'trust.cjs'),
      logLevel: 'silent',
    });
  });
  afterAll(() => t.cleanup());

  it('as an unprivileged user, a root-owned store gives a TlsError naming the targets and `sudo env CAROOT=...`', async () => {
    const plan = tlsPlan(t.dir, SPEC);
    await ensureTls(plan);
    chmodSync(plan.tls.caKeyPath, 0o444); // the child only checks; let it read
    execFileSync('chmod', ['-R', 'a+rX', t.dir]);
    const env = tempEnv(t.dir);
    writeFileSync(join(t.dir, 'plan.json'), JSON.stringify(plan));
    writeFileSync(
      join(t.dir, 'run.cjs'),
      `const { trustCa, runCommand } = require('./trust.cjs');
const fs = require('fs');
const plan = JSON.parse(fs.readFileSync(${JSON.stringify(join(t.dir, 'plan.json'))}, 'utf8'));
const env = { systemStore: ${JSON.stringify(env.systemStore)}, dockerCertsDir: ${JSON.stringify(env.dockerDir)}, run: runCommand, isRoot: false };
trustCa(plan, { env }).then(
  () => console.log(JSON.stringify({ ok: true })),
  (e) => console.log(JSON.stringify({ ok: false, name: e.name, code: e.code, message: e.message, hint: e.hint })),
);
`,
    );
    const out = execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, join(t.dir, 'run.cjs')], {
      encoding: 'utf8',
    });
    const r = JSON.parse(out.trim().split('\n').pop()!);
    expect(r).toMatchObject({ ok: false, name: 'TlsError', code: 'E_TLS' });
    expect(r.message).toMatch(/installing the CA needs root: .*anchors/);
    expect(r.hint).toBe(`rerun with sudo: sudo env CAROOT=${plan.tls.caRoot} lo --config ${plan.project.file} trust --yes`);
    expect(readdirSync(env.anchorDir)).toEqual([]);
    expect(existsSync(env.dockerDir)).toBe(false);
  });
});

describe('lo trust CLI', () => {
  const t = tempDir();
  const saved = { CAROOT: process.env.CAROOT, LO_STATE_DIR: process.env.LO_STATE_DIR };
  let out = '';
  let err = '';
  beforeAll(() => {
    process.env.CAROOT = join(t.dir, 'caroot');
    process.env.LO_STATE_DIR = join(t.dir, 'state');
    writeFileSync(join(t.dir, 'on.yaml'), specYaml(SPEC));
    writeFileSync(join(t.dir, 'off.yaml'), specYaml({ ...SPEC, tls: false }));
  });
  afterEach(() => vi.restoreAllMocks());
  afterAll(() => {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    t.cleanup();
  });
  async function run(args: string[]): Promise<number> {
    out = '';
    err = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
    try {
      return await main(['node', 'lo', ...args]);
    } finally {
      vi.restoreAllMocks();
    }
  }

  it('--check exits 1 and reports the missing CA without creating it (text and --json)', async () => {
    expect(await run(['--config', join(t.dir, 'on.yaml'), 'trust', '--check'])).toBe(1);
    expect(out).toMatch(/\(not created yet\)/);
    expect(out).toMatch(/missing\s+ca/);
    expect(out).toContain(`run: lo --config ${join(t.dir, 'on.yaml')} trust --yes`);
    expect(await run(['--config', join(t.dir, 'on.yaml'), 'trust', '--check', '--json'])).toBe(1);
    const doc = JSON.parse(out);
    expect(doc).toMatchObject({ tls: true, trusted: false, ca: { exists: false } });
    expect(doc.missing[0]).toBe('CA');
    expect(existsSync(join(t.dir, 'caroot', 'rootCA.pem'))).toBe(false);
  });

  it('--check exits 0 when TLS is off', async () => {
    expect(await run(['--config', join(t.dir, 'off.yaml'), 'trust', '--check'])).toBe(0);
    expect(out).toMatch(/TLS is off/);
  });

  it('without a terminal and without --yes: exit 2, says to pass --yes, changes nothing', async () => {
    expect(process.stdin.isTTY).toBeFalsy();
    expect(await run(['--config', join(t.dir, 'on.yaml'), 'trust'])).toBe(2);
    expect(err).toMatch(/lo trust will:/);
    expect(err).toMatch(/create the CA in/);
    expect(err).toMatch(/stdin is not a terminal/);
    expect(err).toMatch(/pass --yes/);
    expect(existsSync(join(t.dir, 'caroot', 'rootCA.pem'))).toBe(false);
  });

  it('lo trust --help describes every option', async () => {
    expect(await run(['trust', '--help'])).toBe(0);
    for (const o of ['--yes', '--check', '--json', '[domain]']) expect(out).toContain(o);
  });
});
