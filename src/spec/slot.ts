import type { NetworkSpec } from './types.js';
import { DEFAULT_DOMAIN, DEFAULT_SLOT, MAX_SLOT, MIN_SLOT } from './constants.js';

export type SlotResult = { slot: number } | { slot: null; problem?: string; hint?: string };

/** Resolves the slot of a domain, or says why it has none (no problem: a domain outside lok8s.dev). */
export function slotOf(domain: string): SlotResult {
  if (domain === DEFAULT_DOMAIN) return { slot: DEFAULT_SLOT };
  if (!domain.endsWith(`.${DEFAULT_DOMAIN}`)) return { slot: null };
  const label = domain.slice(0, -(DEFAULT_DOMAIN.length + 1));
  if (!/^[0-9]+$/.test(label)) {
    return {
      slot: null,
      problem: `"${domain}" is not a slot domain: only lok8s.dev and N.lok8s.dev (N = 2..199) exist`,
      hint: 'use a number, e.g. 50.lok8s.dev',
    };
  }
  if (label.length > 1 && label.startsWith('0')) {
    return { slot: null, problem: `slot "${label}" has a leading zero`, hint: `write ${Number(label)}.lok8s.dev` };
  }
  const n = Number(label);
  if (n === DEFAULT_SLOT)
    return { slot: null, problem: `slot ${n} belongs to lok8s.dev itself`, hint: 'use lok8s.dev, or another number from 2 to 199' };
  if (n < MIN_SLOT || n > MAX_SLOT) {
    return {
      slot: null,
      problem: `slot ${n} is out of range (2..199; 200 is the shared registry network)`,
      hint: 'pick a number from 2 to 199',
    };
  }
  return { slot: n };
}

/** The project subnet of a slot: 10.125.<slot>.0/24. */
export function slotSubnet(slot: number): string {
  return `10.125.${slot}.0/24`;
}

/** Derived default of spec.network for a slot domain: named after the project, on the slot's /24. */
export function defaultProjectNetwork(projectName: string, slot: number): NetworkSpec {
  return { name: projectName, cidr: slotSubnet(slot) };
}
