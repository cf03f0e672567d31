import { describe, expect, it } from 'vitest';
import { ConfigError, type ConfigIssue } from '../../src/errors/loError.js';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { replacementGroups, rewriteProblem } from '../../src/spec/rewrites.js';

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
    ['"^(?<=rancher/)(.*)": "x/$1"', /lookbehind .*RE2/],
    ['"^rancher/(?!x)(.*)": "x/$1"', /lookahead .*RE2/],
    ['"^(a)\\\\1": "x"', /backreference \\1/],
    ['"^(?P<n>.*)": "x/${n}"', /\(\?P<name>/],
    ['"(?i)^rancher/(.*)": "x/$1"', /inline flags/],
    ['"^[[:alpha:]]+/(.*)": "x/$1"', /POSIX class/],
    ['"^rancher/(.*)": "x/$2"', /names group "2" \(\$2\), which the regex does not have \(1 group\)/],
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

  it('accepts named groups, $$, ${1} and a $ that names nothing, as Go does', () => {
    expect(rewriteProblem('^rancher/(?<rest>.*)', 'x/${rest}')).toBeUndefined();
    expect(rewriteProblem('^rancher/(?<rest>.*)', 'x/$rest')).toBeUndefined();
    expect(rewriteProblem('^rancher/(.*)', 'x/${1}y$$-$')).toBeUndefined();
    expect(rewriteProblem('^r[\\]a]n/(.*)', 'x/$1')).toBeUndefined();
    expect(rewriteProblem('^rancher/\\(x\\)', 'plain')).toBeUndefined();
    expect(replacementGroups('a$$b${1}c$2d$name-')).toEqual([
      { ref: '${1}', name: '1', braced: true },
      { ref: '$2d', name: '2d', braced: false },
      { ref: '$name', name: 'name', braced: false },
    ]);
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
