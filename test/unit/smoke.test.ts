import { describe, expect, it } from 'vitest';
import { slotOf } from '../../src/config/parseSpec.js';

describe('slotOf', () => {
  it('gives lok8s.dev slot 125', () => {
    expect(slotOf('lok8s.dev')).toEqual({ slot: 125 });
  });
});
