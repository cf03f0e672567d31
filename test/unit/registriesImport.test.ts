import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../../src/errors/loError.js';
import { authEnvName, importK3sRegistries, normalizeEndpoint, renderImportYaml } from '../../src/spec/importK3s.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/k3s/${name}`, import.meta.url), 'utf8');
const fields = JSON.parse(fixture('registries-fields.json')) as { config: { auth: string[]; tls: string[] } };

function importError(text: string): ConfigError {
  try {
    importK3sRegistries(text, 'r.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('no error');
}

describe('lo registries import (K3s registries.yaml)', () => {
  it("reads K3s's TLS + authentication example: endpoint, its config's TLS, and an Authorization header from a variable", () => {
    const imp = importK3sRegistries(fixture('with-tls-auth.yaml'), 'with-tls-auth.yaml');
    expect(imp.hosts).toEqual({
      'docker.io': {
        endpoints: [{ url: 'https://registry.example.com:5000', headers: { Authorization: { env: 'LO_REGISTRY_EXAMPLE_COM_5000_AUTH' } } }],
      },
    });
    expect(imp.env).toEqual([
      {
        name: 'LO_REGISTRY_EXAMPLE_COM_5000_AUTH',
        holds: expect.stringMatching(/^Basic <base64 of the user name and password/),
        from: 'configs["registry.example.com:5000"].auth',
        line: 8,
      },
    ]);
    expect(imp.notes).toEqual([]);
  });

  it('never copies a literal user name, password or token into the result or its text', () => {
    const text = `mirrors:
  docker.io:
    endpoint: ["https://reg.corp.example"]
configs:
  reg.corp.example:
    auth: { username: alice-s3cr3t-user, password: hunter2-s3cr3t }
  other.example:
    auth: { identity_token: tok-s3cr3t-value }
`;
    const imp = importK3sRegistries(text, 'r.yaml');
    const out = JSON.stringify(imp) + renderImportYaml(imp, 'r.yaml');
    expect(out).not.toMatch(/s3cr3t/);
    expect(imp.env.map((e) => [e.name, e.holds.split(' ')[0]])).toEqual([
      ['LO_REG_CORP_EXAMPLE_AUTH', 'Basic'],
      ['LO_OTHER_EXAMPLE_AUTH', 'Bearer'],
    ]);
    // a config for a host that no endpoint names: an endpoint of that registry at its own address
    expect(imp.hosts['other.example']).toEqual({
      endpoints: [{ url: 'https://other.example', headers: { Authorization: { env: 'LO_OTHER_EXAMPLE_AUTH' } } }],
    });
    expect(imp.notes.map((n) => n.path)).toEqual(['configs["other.example"]']);
  });

  it("maps K3s's rewrite example to hosts.<registry>.rewrite, rules in order", () => {
    const imp = importK3sRegistries(fixture('rewrite.yaml'), 'rewrite.yaml');
    expect(imp.hosts['docker.io']).toEqual({
      endpoints: [{ url: 'https://registry.example.com:5000' }],
      rewrite: { '^rancher/(.*)': 'mirrorproject/rancher-images/$1' },
    });
    expect(imp.notes).toEqual([]);
    const yaml = renderImportYaml(imp, 'rewrite.yaml');
    expect(yaml).toContain('rewrite:\n          ^rancher/(.*): mirrorproject/rancher-images/$1\n');
    const two = importK3sRegistries('mirrors:\n  quay.io:\n    rewrite:\n      "^b/(.*)": "x/$1"\n      "^a/(.*)": "y/${1}"\n', 'two.yaml');
    // A registry with only rewrites is imported (no "nothing to import" note); the file's order is kept.
    expect(Object.entries(two.hosts['quay.io']!.rewrite!)).toEqual([
      ['^b/(.*)', 'x/$1'],
      ['^a/(.*)', 'y/${1}'],
    ]);
    expect(two.notes).toEqual([]);
  });

  it('a rule lo cannot apply as K3s does is left out, named with its line; a non-string is refused', () => {
    const imp = importK3sRegistries(
      'mirrors:\n  docker.io:\n    endpoint: ["https://m.example"]\n    rewrite:\n      "(?=n)(.*)": "x/$1"\n      "^ok/(.*)": "y/$1"\n      "^a/(.*)": "z/$2"\n',
      'bad.yaml',
    );
    expect(imp.hosts['docker.io']!.rewrite).toEqual({ '^ok/(.*)': 'y/$1' });
    expect(imp.notes).toEqual([
      { line: 5, path: 'mirrors["docker.io"].rewrite.(?=n)(.*)', message: expect.stringMatching(/look-around.*left out/) },
      { line: 7, path: 'mirrors["docker.io"].rewrite.^a/(.*)', message: expect.stringMatching(/names group "2".*left out/) },
    ]);
    expect(() => importK3sRegistries('mirrors:\n  docker.io:\n    rewrite:\n      "^a": [1]\n', 'list.yaml')).toThrow(ConfigError);
  });

  it('reads the wildcard example: "*" endpoints, the "*" config for hosts without their own, docker.io left alone', () => {
    const imp = importK3sRegistries(fixture('wildcard.yaml'), 'wildcard.yaml');
    expect(imp.hosts).toEqual({ '*': { endpoints: [{ url: 'https://registry.example.com:5000', tls: { insecureSkipVerify: true } }] } });
    expect(imp.env).toEqual([]);
  });

  it('reads every tls and auth field K3s documents (fixture list), and each tls field maps to its lo name', () => {
    const tls = fields.config.tls.map((k) => `      ${k}: ${k === 'insecure_skip_verify' ? 'true' : `/etc/k3s/${k}.pem`}`).join('\n');
    for (const auth of fields.config.auth) {
      const text = `mirrors:\n  quay.io:\n    endpoint: [quay.corp.example]\nconfigs:\n  quay.corp.example:\n    auth:\n      ${auth}: x\n    tls:\n${tls}\n`;
      const imp = importK3sRegistries(text, 'r.yaml');
      expect(imp.notes).toEqual([]);
      expect(imp.hosts['quay.io']!.endpoints).toEqual([
        {
          url: 'https://quay.corp.example',
          tls: {
            caFile: '/etc/k3s/ca_file.pem',
            certFile: '/etc/k3s/cert_file.pem',
            keyFile: '/etc/k3s/key_file.pem',
            insecureSkipVerify: true,
          },
          headers: { Authorization: { env: 'LO_QUAY_CORP_EXAMPLE_AUTH' } },
        },
      ]);
      expect(imp.env[0]!.holds.split(' ')[0]).toBe(auth === 'identity_token' ? 'Bearer' : 'Basic');
    }
  });

  it('keeps a path prefix, drops the default endpoint and names mirrors without endpoints and unknown keys', () => {
    const text = `mirrors:
  docker.io:
    endpoint:
      - https://artifactory.corp.example/v2/docker-remote
      - https://index.docker.io/v2
  registry.k8s.io:
  ghcr.io:
    endpoints: [https://typo.example]
auths: {}
`;
    const imp = importK3sRegistries(text, 'r.yaml');
    expect(imp.hosts).toEqual({ 'docker.io': { endpoints: [{ url: 'https://artifactory.corp.example/v2/docker-remote' }] } });
    expect(imp.notes.map((n) => `${n.line} ${n.path}`)).toEqual([
      '5 mirrors["docker.io"].endpoint[1]',
      '6 mirrors["registry.k8s.io"]',
      '7 mirrors["ghcr.io"]',
      '8 mirrors["ghcr.io"].endpoints',
      '9 auths',
    ]);
  });

  it('stops on a bad file with exit code 2, the line and the YAML path of each problem', () => {
    const err = importError(`mirrors:
  docker.io:
    endpoint: https://not-a-list.example
configs:
  a.example:
    tls:
      insecure_skip_verify: "yes"
      ca_file: [x]
`);
    expect(err.exitCode).toBe(2);
    expect(err.issues.map((i) => `${i.line} ${i.path}`)).toEqual([
      '3 mirrors["docker.io"].endpoint',
      '7 configs["a.example"].tls.insecure_skip_verify',
      '8 configs["a.example"].tls.ca_file',
    ]);
    expect(importError('x: 1\nmirrors: [a\n').issues[0]).toMatchObject({ line: 3, message: expect.stringMatching(/not valid YAML/) });
    expect(importError('- a\n').issues[0]).toMatchObject({ message: 'is not a mapping' });
  });

  it('refuses credentials inside an endpoint URL without echoing them', () => {
    const err = importError('mirrors:\n  docker.io:\n    endpoint: ["https://bob:pa55word@reg.example"]\n');
    expect(err.message).not.toMatch(/pa55word/);
    expect(err.issues[0]).toMatchObject({ line: 3, path: 'mirrors["docker.io"].endpoint[0]' });
  });

  it('prints valid YAML for spec.registries with the variables and the left-out lines as comments', () => {
    const imp = importK3sRegistries(fixture('with-tls-auth.yaml'), 'with-tls-auth.yaml');
    const text = renderImportYaml(imp, 'with-tls-auth.yaml');
    expect(text).toMatch(/^# spec\.registries from with-tls-auth\.yaml/);
    expect(text).toMatch(/# {3}LO_REGISTRY_EXAMPLE_COM_5000_AUTH: Basic/);
    expect((parseYaml(text) as { spec: { registries: unknown } }).spec.registries).toEqual({ hosts: imp.hosts });
  });

  it('normalises endpoints as K3s does and names variables after the host', () => {
    expect(normalizeEndpoint('mirror.example.com:5000')!.href).toBe('https://mirror.example.com:5000/');
    expect(normalizeEndpoint('localhost:5000')!.href).toBe('http://localhost:5000/');
    expect(normalizeEndpoint('ftp://x')).toBeNull();
    expect(authEnvName('registry.example.com:5000')).toBe('LO_REGISTRY_EXAMPLE_COM_5000_AUTH');
    expect(authEnvName('*')).toBe('LO_DEFAULT_AUTH');
  });
});
