import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, type ConfigIssue } from '../../src/errors/loError.js';
import { loadSpec } from '../../src/spec/loadSpec.js';
import { parseSpec } from '../../src/spec/parseSpec.js';

const FILE = '/specs/team/cluster.lok8s.yaml';
const HEAD = 'apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: team\nspec:\n  registries:\n';
const spec = (registries: string) => parseSpec(HEAD + registries, { file: FILE });

function issues(registries: string): ConfigIssue[] {
  try {
    spec(registries);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected the spec to be refused');
}

const CORP = `    mirrors:
      - name: corp
        url: https://harbor.corp.example
`;

describe('spec.registries.mirrors[].credentials (issue 14)', () => {
  it('takes usernameEnv + passwordEnv, tokenEnv alone, or usernameEnv + tokenEnv', () => {
    expect(
      spec(`${CORP}        credentials: { usernameEnv: CORP_USER, passwordEnv: CORP_PASS }\n`).registries.mirrors[0]!.credentials,
    ).toEqual({
      usernameEnv: 'CORP_USER',
      passwordEnv: 'CORP_PASS',
    });
    expect(spec(`${CORP}        credentials: { tokenEnv: CORP_TOKEN }\n`).registries.mirrors[0]!.credentials).toEqual({
      tokenEnv: 'CORP_TOKEN',
    });
    expect(spec(`${CORP}        credentials: { usernameEnv: U, tokenEnv: T }\n`).registries.mirrors[0]!.credentials).toEqual({
      usernameEnv: 'U',
      tokenEnv: 'T',
    });
  });

  it.each([
    ['{ usernameEnv: U }', 'spec.registries.mirrors[0].credentials', /names no secret/],
    ['{ passwordEnv: P }', 'spec.registries.mirrors[0].credentials.usernameEnv', /passwordEnv needs usernameEnv/],
    ['{ usernameEnv: U, passwordEnv: P, tokenEnv: T }', 'spec.registries.mirrors[0].credentials.tokenEnv', /both given/],
    ['{ tokenEnv: lower-case }', 'spec.registries.mirrors[0].credentials.tokenEnv', /not an environment variable name/],
  ])('%s is refused at its path', (creds, path, message) => {
    const found = issues(`${CORP}        credentials: ${creds}\n`);
    expect(found).toEqual([expect.objectContaining({ path, line: 10, message: expect.stringMatching(message), hint: expect.any(String) })]);
  });

  it('a literal token in tokenEnv is refused and never echoed', () => {
    const token = 'ghp_abcdefghijklmnopqrstuvwxyz0123456789';
    let err: unknown;
    try {
      spec(`${CORP}        credentials: { tokenEnv: ${token} }\n`);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues[0]!.message).toMatch(/looks like a token/);
    expect(JSON.stringify(err) + (err as Error).message).not.toContain(token);
  });
});

describe('spec.registries.mirrors[].tls (issue 14)', () => {
  it('caFile is resolved against the spec file directory', () => {
    const m = spec(`${CORP}        tls: { caFile: ./corp-ca.pem }\n`).registries.mirrors[0]!;
    expect(m.tls).toEqual({ caFile: '/specs/team/corp-ca.pem', insecureSkipVerify: false });
  });

  it('a client certificate is refused with the endpoint alternative, naming the YAML path', () => {
    const found = issues(`${CORP}        tls: { caFile: ca.pem, certFile: client.pem, keyFile: client-key.pem }\n`);
    expect(found.map((i) => i.path)).toEqual(['spec.registries.mirrors[0].tls.certFile', 'spec.registries.mirrors[0].tls.keyFile']);
    expect(found[0]!.message).toMatch(/registry:2 cannot present a client certificate/);
    expect(found[0]!.hint).toContain('spec.registries.hosts["harbor.corp.example"].endpoints');
    expect(found[0]!.line).toBe(10);
  });

  it('insecureSkipVerify: true is refused (registry:2 always verifies) with caFile and the endpoint as fixes', () => {
    const [issue] = issues(`${CORP}        tls:\n          insecureSkipVerify: true\n`);
    expect(issue).toMatchObject({ path: 'spec.registries.mirrors[0].tls.insecureSkipVerify', line: 11 });
    expect(issue!.hint).toMatch(/caFile.*insecureSkipVerify: true/s);
  });

  it('tls on an http:// upstream is refused', () => {
    const [issue] = issues(`    mirrors:\n      - { name: corp, url: "http://harbor.corp.example", tls: { caFile: ca.pem } }\n`);
    expect(issue).toMatchObject({ path: 'spec.registries.mirrors[0].tls', message: expect.stringMatching(/plain http/) });
  });
});

const HOSTS = `    hosts:
      docker.io:
        endpoints:
          - url: https://artifactory.corp.example/v2/docker-remote
            tls:
              caFile: ./corp-ca.pem
              certFile: /etc/pki/client.pem
              keyFile: ./client-key.pem
            headers:
              Authorization: { env: ART_AUTH }
          - url: https://mirror-2.corp.example
            capabilities: [pull]
        disableDefaultEndpoint: true
      "*":
        endpoints: [ { url: "https://mirror.corp.example" } ]
`;

describe('spec.registries.hosts (issue 14)', () => {
  it('normalises endpoints in order, with override_path for a path after /v2 and the default endpoint per registry', () => {
    const s = spec(HOSTS);
    expect(s.registries.hosts).toEqual({
      'docker.io': {
        disableDefaultEndpoint: true,
        endpoints: [
          {
            url: 'https://artifactory.corp.example/v2/docker-remote',
            capabilities: ['pull', 'resolve'],
            overridePath: true,
            tls: {
              caFile: '/specs/team/corp-ca.pem',
              certFile: '/etc/pki/client.pem',
              keyFile: '/specs/team/client-key.pem',
              insecureSkipVerify: false,
            },
            headers: { Authorization: { env: 'ART_AUTH' } },
          },
          {
            url: 'https://mirror-2.corp.example',
            capabilities: ['pull'],
            overridePath: false,
            tls: { insecureSkipVerify: false },
            headers: {},
          },
        ],
        rewrites: [],
      },
      '*': {
        disableDefaultEndpoint: false,
        endpoints: [
          {
            url: 'https://mirror.corp.example',
            capabilities: ['pull', 'resolve'],
            overridePath: false,
            tls: { insecureSkipVerify: false },
            headers: {},
          },
        ],
        rewrites: [],
      },
    });
    expect(s.warnings).toEqual([]);
  });

  it('the global disableDefaultEndpoint is the default of every entry', () => {
    const s = spec(`    disableDefaultEndpoint: true\n    hosts:\n      quay.io: { endpoints: [ { url: "https://q.corp.example" } ] }\n`);
    expect(s.registries.hosts['quay.io']!.disableDefaultEndpoint).toBe(true);
  });

  it('insecureSkipVerify is allowed and warned about; headers over http:// too', () => {
    const s = spec(
      `    hosts:\n      ghcr.io:\n        endpoints:\n          - url: https://g.corp.example\n            tls: { insecureSkipVerify: true }\n          - url: http://h.corp.example\n            headers: { Authorization: { env: H_AUTH } }\n`,
    );
    expect(s.warnings).toEqual([
      expect.stringMatching(/^spec\.registries\.hosts\["ghcr\.io"\]\.endpoints\[0\]: insecureSkipVerify: containerd does not verify/),
      expect.stringMatching(/endpoints\[1\] sends headers \(Authorization\) to http:\/\/h\.corp\.example without TLS/),
    ]);
  });

  it('two endpoints of one entry with the same URL (after normalisation) are refused at the second', () => {
    const found = issues(
      `    hosts:\n      docker.io:\n        endpoints:\n          - url: https://a.corp.example/\n          - url: https://b.corp.example\n          - url: HTTPS://A.corp.example\n`,
    );
    expect(found).toEqual([
      expect.objectContaining({
        path: 'spec.registries.hosts["docker.io"].endpoints[2].url',
        line: 12,
        message: expect.stringMatching(/"https:\/\/a\.corp\.example" is also endpoints\[0\]/),
        hint: expect.stringContaining('merge the two into endpoints[0]'),
      }),
    ]);
    // the same URL under two registries is fine: each has its own hosts.toml
    expect(() =>
      spec(
        `    hosts:\n      docker.io: { endpoints: [ { url: https://a.corp.example } ] }\n      quay.io: { endpoints: [ { url: https://a.corp.example } ] }\n`,
      ),
    ).not.toThrow();
  });

  it('a literal header value is refused, never echoed, at its line', () => {
    const found = issues(
      `    hosts:\n      docker.io:\n        endpoints:\n          - url: https://a.corp.example\n            headers:\n              Authorization: "Basic c2VjcmV0OnNlY3JldA=="\n`,
    );
    expect(found).toEqual([
      expect.objectContaining({
        path: 'spec.registries.hosts["docker.io"].endpoints[0].headers.Authorization',
        line: 12,
        message: expect.stringMatching(/must come from an environment variable/),
        hint: expect.stringContaining('Authorization: { env: MY_HEADER_VAR }'),
      }),
    ]);
    expect(JSON.stringify(found)).not.toContain('c2VjcmV0');
  });

  it.each([
    ['"docker.io/library": { endpoints: [] }', 'spec.registries.hosts["docker.io/library"]', /not a registry name/],
    ['lok8s.local: { endpoints: [] }', 'spec.registries.hosts["lok8s.local"]', /project's own build registry/],
    ['docker.io: { endpoints: [ { url: "ftp://x.example" } ] }', 'spec.registries.hosts["docker.io"].endpoints[0].url', /scheme "ftp"/],
    [
      'docker.io: { endpoints: [ { url: "https://u:p@x.example" } ] }',
      'spec.registries.hosts["docker.io"].endpoints[0].url',
      /user name or password/,
    ],
    [
      'docker.io: { endpoints: [ { url: "http://x.example", tls: { caFile: ca.pem } } ] }',
      'spec.registries.hosts["docker.io"].endpoints[0].tls',
      /plain http/,
    ],
    [
      'docker.io: { endpoints: [ { url: "https://x.example", tls: { certFile: c.pem } } ] }',
      'spec.registries.hosts["docker.io"].endpoints[0].tls.keyFile',
      /certFile needs keyFile/,
    ],
    [
      'docker.io: { endpoints: [ { url: "https://x.example", headers: { "Bad Header": { env: X } } } ] }',
      'spec.registries.hosts["docker.io"].endpoints[0].headers',
      /not an HTTP token/,
    ],
    [
      'docker.io: { endpoints: [ { url: "https://x.example", headers: { Authorization: { env: art-auth } } } ] }',
      'spec.registries.hosts["docker.io"].endpoints[0].headers.Authorization.env',
      /not an environment variable name/,
    ],
    [
      'docker.io: { endpoints: [ { url: "https://x.example", capabilities: [pull, fetch] } ] }',
      'spec.registries.hosts["docker.io"].endpoints[0].capabilities[1]',
      /not one of pull, resolve, push/,
    ],
    [
      'docker.io: { endpoints: [ { url: "https://x.example", rewrite: {} } ] }',
      'spec.registries.hosts["docker.io"].endpoints[0].rewrite',
      /unknown field/,
    ],
  ])('%s is refused', (entry, path, message) => {
    const found = issues(`    hosts:\n      ${entry}\n`);
    expect(found).toEqual([expect.objectContaining({ path, line: 8, message: expect.stringMatching(message), hint: expect.any(String) })]);
  });
});

describe('TLS files named in the spec (loadSpec)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lo-spec-access-'));
    await writeFile(join(dir, 'corp-ca.pem'), '-----BEGIN CERTIFICATE-----\n');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('are read relative to the spec file, and a missing one is an issue with file, line and path', async () => {
    const text = `${HEAD}${CORP}        tls: { caFile: corp-ca.pem }\n    hosts:\n      docker.io:\n        endpoints:\n          - url: https://a.corp.example\n            tls: { caFile: ./missing-ca.pem }\n`;
    await writeFile(join(dir, 'bad.yaml'), text);
    await writeFile(join(dir, 'good.yaml'), `${HEAD}${CORP}        tls: { caFile: corp-ca.pem }\n`);
    const good = await loadSpec({ config: join(dir, 'good.yaml') });
    expect(good.registries.mirrors[0]!.tls!.caFile).toBe(join(dir, 'corp-ca.pem'));
    const err = await loadSpec({ config: join(dir, 'bad.yaml') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues).toEqual([
      expect.objectContaining({
        file: join(dir, 'bad.yaml'),
        line: 15,
        path: 'spec.registries.hosts["docker.io"].endpoints[0].tls.caFile',
        message: '"./missing-ca.pem" does not exist',
      }),
    ]);
  });
});
