import { describe, expect, it } from 'vitest';
import { ConfigError, type ConfigIssue } from '../../src/errors/loError.js';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { compileRule } from '../../src/agent/forward/rewrites.js';
import { rewriteProblem } from '../../src/spec/rewrites.js';

const FILE = '/specs/team/cluster.lok8s.yaml';
const HEAD = 'apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: team\nspec:\n  registries:\n    hosts:\n';
const spec = (hosts: string) => parseSpec(HEAD + hosts, { file: FILE });

function issues(hosts: string): ConfigIssue[] {
  try {
    spec(hosts);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected the spec to be refused');
}

describe('spec.registries.hosts.<registry>.rewrite (issue 14)', () => {
  it('keeps the rules in file order, on an entry without endpoints', () => {
    const s = spec(
      [
        '      docker.io:',
        '        rewrite:',
        '          "^rancher/(.*)": "mirrorproject/rancher-images/$1"',
        '          "^library/(.*)": "mirror/${1}"',
        '          "^a(.*)": "b$1"',
        '      "*":',
        '        rewrite: { "^(.*)$": "all/$1" }',
        '',
      ].join('\n'),
    );
    expect(s.registries.hosts['docker.io']).toEqual({
      endpoints: [],
      disableDefaultEndpoint: false,
      rewrites: [
        { pattern: '^rancher/(.*)', replacement: 'mirrorproject/rancher-images/$1' },
        { pattern: '^library/(.*)', replacement: 'mirror/${1}' },
        { pattern: '^a(.*)', replacement: 'b$1' },
      ],
    });
    expect(s.registries.hosts['*']!.rewrites).toEqual([{ pattern: '^(.*)$', replacement: 'all/$1' }]);
  });

  it('an entry without rewrite has none', () => {
    expect(spec('      quay.io: { endpoints: [ { url: "https://quay.example" } ] }\n').registries.hosts['quay.io']!.rewrites).toEqual([]);
  });

  it.each([
    ['"^rancher/(.*": "x/$1"', /not a valid regex/],
    ['"^(?<=rancher/)(.*)": "x/$1"', /look-around .*RE2/],
    ['"^rancher/(?!x)(.*)": "x/$1"', /look-around .*RE2/],
    ['"^(a)\\\\1": "x"', /back-reference \\1/],
    ['"^a(?i)b/(.*)": "x/$1"', /inline flags .* only at the start/],
    ['"^\\\\Qa.b\\\\E/(.*)": "x/$1"', /\\Q…\\E/],
    ['"^rancher/(.*)": "x/$2"', /names group "2", which the regex does not have \(1 group\)/],
    ['"^rancher/(.*)": "x/$1y"', /names group "1y"/],
    ['"^rancher/(?<rest>.*)": "x/${other}"', /names group "other".*: rest/],
    ['"": "x"', /empty regex/],
  ])('%s is refused at its key, with its line and a fix', (rule, message) => {
    const found = issues(`      docker.io:\n        rewrite:\n          ${rule}\n`);
    expect(found).toHaveLength(1);
    expect(found[0]).toEqual(
      expect.objectContaining({ file: FILE, line: 10, message: expect.stringMatching(message), hint: expect.any(String) }),
    );
    expect(found[0]!.path).toMatch(/^spec\.registries\.hosts\["docker\.io"\]\.rewrite/);
  });

  it('$1y names how to write group 1 followed by y', () => {
    expect(rewriteProblem('^rancher/(.*)', 'x/$1y')?.hint).toBe('Go reads $1y as group "1y": write ${1}y');
  });

  it('accepts what the agent translates from Go (named groups, a leading flag, \\A \\z, POSIX classes), $$, ${1}, a bare $', () => {
    const ok: Array<[string, string]> = [
      ['^rancher/(?<rest>.*)', 'x/${rest}'],
      ['^rancher/(?P<rest>.*)', 'x/$rest'],
      ['(?i)^Rancher/(.*)', 'x/$1'],
      ['\\Arancher/(.*)\\z', 'x/${1}y$$-$'],
      ['^[[:alpha:]]+/(.*)', 'x/$1'],
      ['^r[]a]n/(.*)', 'x/$1'],
      ['^rancher/\\(x\\)', 'plain'],
    ];
    for (const [pattern, replacement] of ok) {
      expect(rewriteProblem(pattern, replacement), pattern).toBeUndefined();
      // The same rule starts the agent: the spec check and the agent agree.
      expect(() => compileRule(pattern, replacement, 'r'), pattern).not.toThrow();
    }
  });

  it('a rule the spec refuses is one the agent refuses too', () => {
    for (const [pattern, replacement] of [
      ['^(?<=a)b', 'x'],
      ['^(a)\\1', 'x'],
      ['^a(?i)b', 'x'],
      ['^(a', 'x'],
      ['^(a)', '$2'],
      ['^(a)', '$1b'],
    ] as Array<[string, string]>) {
      expect(rewriteProblem(pattern, replacement), pattern).toBeDefined();
      expect(() => compileRule(pattern, replacement, 'r'), pattern).toThrow();
    }
  });

  it('a replacement that is not a string is a schema error at its path', () => {
    const found = issues('      docker.io:\n        rewrite:\n          "^a(.*)": [1]\n');
    expect(found).toEqual([
      expect.objectContaining({
        path: 'spec.registries.hosts["docker.io"].rewrite.^a(.*)',
        line: 10,
        message: 'must be a string, got a list',
      }),
    ]);
  });
});
