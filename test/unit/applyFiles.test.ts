import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyCertsDir, fileAction } from '../../src/apply/certsDir.js';
import { writeFileAtomic } from '../../src/apply/files.js';
import { containerSpecHash, ensureHashKey, registryConfigWithSecrets } from '../../src/apply/registryConfig.js';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { LoError } from '../../src/errors/loError.js';
import { planCluster } from '../../src/plan/planCluster.js';
import type { Plan } from '../../src/plan/types.js';
import { parse } from 'yaml';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lodk-unit-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function plan(
  mirrors: Array<{ name: string; url: string; registry?: string; credentials?: { usernameEnv: string; passwordEnv: string } }>,
  tls = false,
): Plan {
  const text = JSON.stringify({
    apiVersion: 'cluster.lok8s.dev/v1beta1',
    kind: 'Lo',
    metadata: { name: 'lodk-u' },
    spec: {
      cluster: { domain: 'u.test' },
      network: { name: 'lodk-u', cidr: '10.140.90.0/24' },
      registries: { tls, shared: { network: { name: 'lodk-us', cidr: '10.140.91.0/24' } }, mirrors },
    },
  });
  return planCluster(parseSpec(text, { file: join(dir, 'spec.yaml') }), {
    paths: { stateDir: join(dir, 'state'), caRoot: join(dir, 'ca') },
  });
}

describe('writeFileAtomic', () => {
  it('creates with the mode, leaves identical content untouched, replaces changed content by rename', async () => {
    const f = join(dir, 'sub', 'config.yml');
    expect(await writeFileAtomic(f, 'a: 1\n', 0o600)).toBe('create');
    expect(statSync(f).mode & 0o777).toBe(0o600);
    const before = statSync(f);
    await new Promise((r) => setTimeout(r, 20));
    expect(await writeFileAtomic(f, 'a: 1\n', 0o600)).toBe('noop');
    expect(statSync(f).mtimeMs).toBe(before.mtimeMs);
    expect(await writeFileAtomic(f, 'a: 2\n', 0o600)).toBe('recreate');
    // a new inode: replaced by rename, never rewritten in place (a reader sees old or new, not half)
    expect(statSync(f).ino).not.toBe(before.ino);
    expect(readFileSync(f, 'utf8')).toBe('a: 2\n');
    expect(readdirSync(join(dir, 'sub'))).toEqual(['config.yml']);
  });

  it('the diff says what a write would change, without writing (fileAction)', async () => {
    const f = join(dir, 'x', 'y');
    expect(fileAction(null, 'z')).toBe('create');
    expect(existsSync(join(dir, 'x'))).toBe(false);
    expect(await writeFileAtomic(f, 'z', 0o644)).toBe(fileAction(null, 'z'));
    expect(fileAction(readFileSync(f, 'utf8'), 'z')).toBe('noop');
    expect(fileAction(readFileSync(f, 'utf8'), 'w')).toBe(await writeFileAtomic(f, 'w', 0o644));
  });
});

describe('applyCertsDir', () => {
  it('writes every hosts.toml of the plan, refreshes in place (same directory inode) and removes only stale lo directories', async () => {
    const p1 = plan([
      { name: 'lodk-a', url: 'http://10.140.91.200:5000', registry: 'a.example' },
      { name: 'lodk-b', url: 'http://10.140.91.200:5000', registry: 'b.example' },
    ]);
    const first = await applyCertsDir(p1, null);
    expect(first.filter((a) => a.action === 'create')).toHaveLength(p1.containerd.hosts.length);
    for (const h of p1.containerd.hosts) expect(readFileSync(h.path, 'utf8')).toBe(h.content);
    const inode = statSync(p1.containerd.certsDir).ino;
    // someone else's directory with a hosts.toml lo did not write
    mkdirSync(join(p1.containerd.certsDir, 'foreign.example'));
    writeFileSync(join(p1.containerd.certsDir, 'foreign.example', 'hosts.toml'), 'server = "https://foreign.example"\n');

    expect((await applyCertsDir(p1, null)).every((a) => a.action === 'noop')).toBe(true);

    const p2 = plan([{ name: 'lodk-a', url: 'http://10.140.91.200:5000', registry: 'a.example' }]);
    const second = await applyCertsDir(p2, null);
    const removed = second
      .filter((a) => a.action === 'remove')
      .map((a) => a.name.replace(`${p2.containerd.certsDir}/`, ''))
      .sort();
    expect(removed).toEqual(['10.140.91.3/hosts.toml', 'b.example/hosts.toml']);
    expect(statSync(p2.containerd.certsDir).ino).toBe(inode);
    expect(readdirSync(p2.containerd.certsDir).sort()).toEqual([...p2.containerd.hosts.map((h) => h.host), 'foreign.example'].sort());
  });

  it('writes the CA copy with TLS and removes it when TLS is turned off', async () => {
    const withTls = plan([], true);
    await applyCertsDir(withTls, 'CA PEM\n');
    expect(readFileSync(withTls.containerd.caFile!, 'utf8')).toBe('CA PEM\n');
    const without = plan([]);
    const actions = await applyCertsDir(without, null);
    expect(actions.find((a) => a.action === 'remove')).toEqual({
      kind: 'file',
      name: withTls.containerd.caFile,
      action: 'remove',
      reason: 'TLS is off',
    });
    expect(existsSync(withTls.containerd.caFile!)).toBe(false);
  });
});

describe('registry config with secrets', () => {
  const creds = { usernameEnv: 'LODK_U', passwordEnv: 'LODK_P' };

  it('adds proxy credentials from the environment at write time only', () => {
    const p = plan([{ name: 'lodk-c', url: 'https://r.example', credentials: creds }]);
    const mirror = p.registries.find((r) => r.role === 'mirror')!;
    expect(mirror.config).not.toContain('s3cret');
    const written = parse(registryConfigWithSecrets(mirror, { LODK_U: 'me', LODK_P: 's3cret' })) as { proxy: Record<string, string> };
    expect(written.proxy).toEqual({ remoteurl: 'https://r.example', username: 'me', password: 's3cret' });
    // build/cache have no credentials: the plan's rendering as is
    const build = p.registries.find((r) => r.role === 'build')!;
    expect(registryConfigWithSecrets(build, {})).toBe(build.config);
  });

  it('names the missing variables (exit code 2)', () => {
    const mirror = plan([{ name: 'lodk-c', url: 'https://r.example', credentials: creds }]).registries.find((r) => r.role === 'mirror')!;
    const err = (() => {
      try {
        registryConfigWithSecrets(mirror, { LODK_U: 'me' });
      } catch (e) {
        return e as LoError;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(LoError);
    expect(err!.message).toBe('mirror "lodk-c" needs credentials from $LODK_P, which is not set');
    expect(err!.exitCode).toBe(2);
  });

  it('the container spec hash changes with the plan hash, the certificate and the config content, and holds no secret', () => {
    const base = containerSpecHash('abc', 'CERT', 'password: one');
    expect(base).toMatch(/^[0-9a-f]{16}$/);
    expect(containerSpecHash('abc', 'CERT', 'password: one')).toBe(base);
    expect(containerSpecHash('abd', 'CERT', 'password: one')).not.toBe(base);
    expect(containerSpecHash('abc', 'CERT2', 'password: one')).not.toBe(base);
    expect(containerSpecHash('abc', null, 'password: one')).not.toBe(base);
    expect(containerSpecHash('abc', 'CERT', 'password: two')).not.toBe(base);
    // With credentials the config part is keyed: the label does not let anyone test password guesses.
    const key = Buffer.alloc(32, 7);
    expect(containerSpecHash('abc', 'CERT', 'password: one', key)).not.toBe(base);
    expect(containerSpecHash('abc', 'CERT', 'password: one', key)).toBe(
      containerSpecHash('abc', 'CERT', 'password: one', Buffer.from(key)),
    );
    expect(containerSpecHash('abc', 'CERT', 'password: two', key)).not.toBe(containerSpecHash('abc', 'CERT', 'password: one', key));
    expect(containerSpecHash('abc', 'CERT', 'password: one', Buffer.alloc(32, 8))).not.toBe(
      containerSpecHash('abc', 'CERT', 'password: one', key),
    );
  });

  it('the hash key is created once, 0600, and read back by later and concurrent callers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lo-hashkey-'));
    try {
      const [a, b] = await Promise.all([ensureHashKey(join(dir, 'state')), ensureHashKey(join(dir, 'state'))]);
      expect(a.length).toBe(32);
      expect(b.equals(a)).toBe(true);
      expect(statSync(join(dir, 'state', 'hash.key')).mode & 0o777).toBe(0o600);
      expect((await ensureHashKey(join(dir, 'state'))).equals(a)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
