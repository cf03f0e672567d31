import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LoError } from '../../src/errors/loError.js';
import { goRegexToJs, parseRewrites, rewriteRepository, rulesFor } from '../../src/agent/forward/rewrites.js';
import { forwardHosts, hostDirCandidates, mapPath, parseHostsFile } from '../../src/agent/forward/hostsFile.js';
import { createForwarder } from '../../src/agent/forward/forwarder.js';
import { createMetrics } from '../../src/agent/metrics.js';
import { parseBearerChallenge } from '../../src/agent/forward/upstream.js';

const rewrite = (json: string, registry: string, repo: string): string | null => {
  const rules = rulesFor(parseRewrites(json), registry);
  return rules ? (rewriteRepository(rules, repo)?.repository ?? null) : null;
};

function startError(fn: () => unknown): LoError {
  try {
    fn();
  } catch (e) {
    return e as LoError;
  }
  throw new Error('accepted');
}

describe('rewrite rules (K3s mirrors.<registry>.rewrite)', () => {
  const k3sDoc = JSON.stringify({ 'docker.io': [['^rancher/(.*)', 'mirrorproject/rancher-images/$1']] });

  it("K3s's documented example: rancher/* goes to mirrorproject/rancher-images/*; other names and registries are untouched", () => {
    expect(rewrite(k3sDoc, 'docker.io', 'rancher/pause')).toBe('mirrorproject/rancher-images/pause');
    expect(rewrite(k3sDoc, 'docker.io', 'rancher/mirrored/coredns-coredns')).toBe('mirrorproject/rancher-images/mirrored/coredns-coredns');
    expect(rewrite(k3sDoc, 'docker.io', 'library/rancher')).toBeNull();
    // anchors: ^ holds, so a name containing rancher/ later does not match
    expect(rewrite(k3sDoc, 'docker.io', 'team/rancher/x')).toBeNull();
    expect(rulesFor(parseRewrites(k3sDoc), 'quay.io')).toBeUndefined();
  });

  it('first rule that changes the name wins, in the order given; * is for registries without rules of their own', () => {
    const json = JSON.stringify({
      'docker.io': [
        ['^library/(.*)', 'hub/library/$1'],
        ['^(.*)$', 'hub/other/$1'],
      ],
      '*': [['^(.*)$', 'all/${1}']],
    });
    expect(rewrite(json, 'docker.io', 'library/alpine')).toBe('hub/library/alpine');
    expect(rewrite(json, 'docker.io', 'team/app')).toBe('hub/other/team/app');
    expect(rewrite(json, 'ghcr.io', 'team/app')).toBe('all/team/app');
    // docker.io has its own rules: * does not add to them
    expect(rulesFor(parseRewrites(json), 'docker.io')).toHaveLength(2);
  });

  it('Go replacement syntax: $1, ${1}, $name, ${name}, $$; a malformed $ is literal; every match is replaced', () => {
    expect(rewrite('{"r":[["^a/(.*)","b/${1}-x"]]}', 'r', 'a/app')).toBe('b/app-x');
    expect(rewrite('{"r":[["^(?P<org>[a-z]+)/(?P<app>.*)$","${app}/$org"]]}', 'r', 'team/app')).toBe('app/team');
    expect(rewrite('{"r":[["^a/(.*)","b/$$1/$1"]]}', 'r', 'a/x')).toBe('b/$1/x');
    expect(rewrite('{"r":[["^a/(.*)","b/$-/$1"]]}', 'r', 'a/x')).toBe('b/$-/x');
    expect(rewrite('{"r":[["-","_"]]}', 'r', 'my-team/my-app')).toBe('my_team/my_app');
    expect(rewrite('{"r":[["\\\\Ateam\\\\z","group"]]}', 'r', 'team')).toBe('group');
    expect(rewrite('{"r":[["(?i)^TEAM/","group/"]]}', 'r', 'team/app')).toBe('group/app');
    expect(rewrite('{"r":[["^[[:alpha:]]+/","x/"]]}', 'r', 'team/app')).toBe('x/app');
    expect(rewrite('{"r":[["[]a]","b"]]}', 'r', 'a]')).toBe('bb');
  });

  it('only the repository is rewritten: the rules never see a tag or digest', () => {
    // a rule written for "name:tag" does not match the repository alone
    expect(rewrite('{"docker.io":[["^rancher/pause:3.6$","x/pause"]]}', 'docker.io', 'rancher/pause')).toBeNull();
  });

  it('$1x is Go\'s group "1x" (empty): refused, with ${1}x as the fix; unknown groups and bad patterns are start errors naming the rule', () => {
    const e = startError(() => parseRewrites('{"docker.io":[["^a/(.*)","b/$1x"]]}'));
    expect(e.exitCode).toBe(2);
    expect(e.message).toMatch(/docker\.io\[0\].*group "1x"/);
    expect(e.hint).toContain('${1}');
    expect(startError(() => parseRewrites('{"docker.io":[["^a/(.*)","b/$2"]]}')).message).toMatch(/group "2".*1 group/);
    expect(startError(() => parseRewrites('{"q":[["ok","x"],["(a","b"]]}')).message).toMatch(/q\[1\]: pattern "\(a" is not a valid/);
    expect(startError(() => parseRewrites('{"q":[["a(?=b)","c"]]}')).message).toMatch(/look-around/);
    expect(startError(() => parseRewrites('{"q":[["(a)\\\\1","c"]]}')).message).toMatch(/back-reference/);
    expect(startError(() => parseRewrites('{"q":[["a(?i)b","c"]]}')).message).toMatch(/only at the start/);
    expect(startError(() => parseRewrites('{"q":"^a"}')).message).toMatch(/q: must be a list/);
    expect(startError(() => parseRewrites('{"q":[["^a"]]}')).message).toMatch(/q\[0\]: must be a \[regex, replacement\] pair/);
    expect(startError(() => parseRewrites('{not json')).message).toMatch(/not JSON/);
    expect(parseRewrites('').size).toBe(0);
  });

  it('translates RE2-only syntax to JavaScript', () => {
    expect(goRegexToJs('(?P<a>x)\\A\\z')).toEqual({ source: '(?<a>x)^$', flags: '' });
    expect(goRegexToJs('(?is)a')).toEqual({ source: 'a', flags: 'is' });
    expect(goRegexToJs('[^]x]')).toEqual({ source: '[^\\]x]', flags: '' });
  });
});

describe('hosts.toml as containerd reads it, for forwarding', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lo-hosts-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const certsD = '/proc/1/root/etc/containerd/certs.d';
  const regDir = `${certsD}/docker.io`;
  const file = `server = "https://registry-1.docker.io"

[host."http://127.0.0.1:30020"]
  capabilities = ["pull", "resolve"]

[host."https://mirror.corp:5000"]
  capabilities = ["pull", "resolve"]
  ca = "/etc/containerd/certs.d/docker.io/mirror-ca.crt"
  client = [["client.crt", "/etc/lo/client.key"]]
  [host."https://mirror.corp:5000".header]
    Authorization = "Basic c2VjcmV0"

[host."https://artifactory.corp/v2/docker-remote"]
  capabilities = ["pull"]
  override_path = true
  skip_verify = true
  ca = ["a.pem", "b.pem"]

[host."http://plain:5000/some/prefix"]
`;

  it('entries in file order after the agent, with capabilities, CA, client pairs, headers, override_path and paths', () => {
    const hosts = forwardHosts(parseHostsFile(file, 'docker.io', certsD, regDir), ['http://127.0.0.1:30020']);
    expect(hosts.map((h) => [h.origin, h.path, h.pull, h.resolve])).toEqual([
      ['https://mirror.corp:5000', '/v2', true, true],
      ['https://artifactory.corp', '/v2/docker-remote', true, false],
      ['http://plain:5000', '/some/prefix/v2', true, true],
    ]);
    const [mirror, art] = hosts;
    expect(mirror!.ca).toEqual([`${certsD}/docker.io/mirror-ca.crt`]);
    // relative: to the registry's directory; other absolute paths: under the node's root
    expect(mirror!.client).toEqual([[`${regDir}/client.crt`, '/proc/1/root/etc/lo/client.key']]);
    expect(mirror!.headers).toEqual({ authorization: ['Basic c2VjcmV0'] });
    expect(art!.skipVerify).toBe(true);
    expect(art!.ca).toEqual([`${regDir}/a.pem`, `${regDir}/b.pem`]);
  });

  it('the default endpoint (server absent, or registry-1.docker.io) is never a forward target; another server is, last', () => {
    expect(parseHostsFile(file, 'docker.io', certsD, regDir).server).toBeNull();
    expect(parseHostsFile('[host."http://m:1"]\n', 'docker.io', certsD, regDir).server).toBeNull();
    expect(parseHostsFile('server = "https://quay.io"\n', 'quay.io', certsD, regDir).server).toBeNull();
    const other = parseHostsFile('server = "https://upstream.corp"\n[host."http://127.0.0.1:30020"]\n', 'quay.io', certsD, regDir);
    expect(forwardHosts(other, ['http://127.0.0.1:30020']).map((h) => h.origin)).toEqual(['https://upstream.corp']);
  });

  it('without the agent in the file every host is taken; the agent is skipped wherever it is', () => {
    const f = parseHostsFile('[host."http://a:1"]\n[host."http://127.0.0.1:30020"]\n[host."http://b:1"]\n', 'x.io', certsD, regDir);
    expect(forwardHosts(f, ['http://127.0.0.1:30020']).map((h) => h.origin)).toEqual(['http://b:1']);
    expect(forwardHosts(f, ['http://127.0.0.1:9']).map((h) => h.origin)).toEqual(['http://a:1', 'http://127.0.0.1:30020', 'http://b:1']);
  });

  it('directories as containerd looks them up: host_port_, host:port, _default; paths under --hosts-dir', () => {
    expect(hostDirCandidates('/h', 'reg.corp:5000')).toEqual(['/h/reg.corp_5000_', '/h/reg.corp:5000', '/h/_default']);
    expect(hostDirCandidates('/h', 'docker.io')).toEqual(['/h/docker.io', '/h/_default']);
    expect(mapPath('/etc/containerd/certs.d/x/ca.crt', '/mnt/certs', '/mnt/certs/x')).toBe('/mnt/certs/x/ca.crt');
    expect(mapPath('/etc/other.pem', '/mnt/certs', '/mnt/certs/x')).toBe('/etc/other.pem');
    expect(mapPath('ca.crt', '/mnt/certs', '/mnt/certs/x')).toBe('/mnt/certs/x/ca.crt');
  });

  it('refuses what containerd refuses (unknown capability, bad client pair, not TOML)', () => {
    expect(() => parseHostsFile('[host."http://a:1"]\ncapabilities = ["fly"]\n', 'x', certsD, regDir)).toThrow(/unknown capability fly/);
    expect(() => parseHostsFile('[host."http://a:1"]\nclient = [["a","b","c"]]\n', 'x', certsD, regDir)).toThrow(/client/);
    expect(() => parseHostsFile('server = \n', 'x', certsD, regDir)).toThrow(/not TOML/);
  });

  it('the forwarder reads <registry>/hosts.toml, else _default, and re-reads it when it changes', async () => {
    mkdirSync(join(dir, 'docker.io'));
    mkdirSync(join(dir, '_default'));
    writeFileSync(join(dir, 'docker.io', 'hosts.toml'), '[host."http://127.0.0.1:30020"]\n[host."http://a:1"]\n');
    writeFileSync(join(dir, '_default', 'hosts.toml'), '[host."http://d:1"]\n');
    const fw = createForwarder({ hostsDir: dir, self: ['http://127.0.0.1:30020'], metrics: createMetrics(), log: () => {} });
    expect((await fw.hostsFor('docker.io')).map((h) => h.origin)).toEqual(['http://a:1']);
    expect((await fw.hostsFor('quay.io')).map((h) => h.origin)).toEqual(['http://d:1']);
    writeFileSync(join(dir, 'docker.io', 'hosts.toml'), '[host."http://127.0.0.1:30020"]\n[host."http://b:1"]\n[host."http://c:1"]\n');
    expect((await fw.hostsFor('docker.io')).map((h) => h.origin)).toEqual(['http://b:1', 'http://c:1']);
    // a broken file: nothing forwarded (404, containerd goes on by itself)
    writeFileSync(join(dir, '_default', 'hosts.toml'), 'server = [\n');
    expect(await fw.hostsFor('quay.io')).toEqual([]);
    fw.close();
  });
});

describe('bearer challenges', () => {
  it('parses realm, service and scope (quoted or not)', () => {
    expect(parseBearerChallenge('Bearer realm="https://auth.corp/token",service="registry.corp",scope="repository:a/b:pull"')).toEqual({
      realm: 'https://auth.corp/token',
      service: 'registry.corp',
      scope: 'repository:a/b:pull',
    });
    expect(parseBearerChallenge('bearer realm=http://127.0.0.1:1/t')).toEqual({ realm: 'http://127.0.0.1:1/t' });
    expect(parseBearerChallenge('Basic realm="x"')).toBeNull();
    expect(parseBearerChallenge(undefined)).toBeNull();
  });
});
