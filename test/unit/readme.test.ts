import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BUILT_IN_SPEC, parseSpec } from '../../src/spec/parseSpec.js';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('spells out the built-in default in its spec reference: the example parses to the same spec', () => {
    const block = README.split('## Spec reference')[1]!.split('```yaml')[1]!.split('```')[0]!;
    const fromReadme = parseSpec(block, { file: 'README.md', domain: 'lok8s.dev' });
    const builtIn = parseSpec(BUILT_IN_SPEC, { file: 'README.md', domain: 'lok8s.dev' });
    expect(fromReadme).toEqual(builtIn);
  });

  it('names the test command that .ci/run runs', () => {
    expect(README).toMatch(/## Tests\n\n```sh\nnpm test\n```/);
    expect(readFileSync(new URL('../../.ci/run', import.meta.url), 'utf8')).toMatch(/^npm test$/m);
  });
});
