import { describe, expect, it } from 'vitest';
import { ConfigError, LoError, PlanConflictError } from '../../src/errors/loError.js';

describe('LoError across copies of its module', () => {
  it('a LoError made by another copy of the module (the CLI bundle vs dist/agent) is still a LoError', async () => {
    // A second instance of the same module, as the CLI bundle and the agent modules in dist/agent each have.
    const secondCopy = '../../src/errors/loError.js?second-copy';
    const other = (await import(/* @vite-ignore */ secondCopy)) as typeof import('../../src/errors/loError.js');
    expect(other.LoError).not.toBe(LoError);
    const err = new other.ConfigError([{ file: 'cluster.lok8s.yaml', path: 'spec.registries', message: 'bad rule' }]);
    expect(err).toBeInstanceOf(LoError);
    expect(new LoError('E_STEP', 'x')).toBeInstanceOf(other.LoError);
    expect(err instanceof LoError && err.exitCode).toBe(2);
  });

  it('subclasses still check by class, and plain errors are not LoErrors', () => {
    expect(new ConfigError([{ file: 'f', path: '', message: 'x' }])).toBeInstanceOf(ConfigError);
    expect(new ConfigError([{ file: 'f', path: '', message: 'x' }])).not.toBeInstanceOf(PlanConflictError);
    expect(new Error('x')).not.toBeInstanceOf(LoError);
    expect(Object.assign(new Error('x'), { code: 'E_CONFIG', exitCode: 2 })).not.toBeInstanceOf(LoError);
    expect(LoError[Symbol.hasInstance](null)).toBe(false);
  });
});
