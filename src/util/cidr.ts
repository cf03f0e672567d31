import ipaddr from 'ipaddr.js';

export interface ParsedCidr {
  network: string;
  prefix: number;
  /** First three octets of a /24, e.g. `10.125.125`. */
  base: string;
}

type CidrProblem =
  | { kind: 'invalid' }
  | { kind: 'legacy'; readAs: string }
  | { kind: 'not-aligned'; network: string; prefix: number }
  | { kind: 'prefix'; prefix: number };

/**
 * Parses an IPv4 CIDR that must be a network-aligned /24. Returns the problem instead of throwing. Only
 * dotted-quad decimal is an address here: the legacy forms inet_aton also reads (leading-zero octal, hex,
 * two- and three-part) are a `legacy` problem with the address they would be read as.
 */
export function parseSubnet24(cidr: string): ParsedCidr | CidrProblem {
  if (typeof cidr !== 'string' || !ipaddr.IPv4.isValidCIDR(cidr)) return { kind: 'invalid' };
  const [addr, prefix] = ipaddr.IPv4.parseCIDR(cidr);
  const [text, prefixText] = cidr.split('/') as [string, string];
  if (!ipaddr.IPv4.isValidFourPartDecimal(text) || !/^(0|[1-9][0-9]?)$/.test(prefixText)) {
    return { kind: 'legacy', readAs: `${addr.toString()}/${prefix}` };
  }
  const network = ipaddr.IPv4.networkAddressFromCIDR(cidr).toString();
  if (network !== addr.toString()) return { kind: 'not-aligned', network, prefix };
  if (prefix !== 24) return { kind: 'prefix', prefix };
  return { network, prefix, base: network.split('.').slice(0, 3).join('.') };
}

export function isProblem(p: ParsedCidr | CidrProblem): p is CidrProblem {
  return 'kind' in p;
}

/** True when two IPv4 CIDRs share any address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const pa = ipaddr.IPv4.parseCIDR(a);
  const pb = ipaddr.IPv4.parseCIDR(b);
  const na = ipaddr.IPv4.networkAddressFromCIDR(a);
  const nb = ipaddr.IPv4.networkAddressFromCIDR(b);
  return na.match(pb) || nb.match(pa);
}

/** `10.125.125` + 101 -> `10.125.125.101`. */
export function hostAddress(base: string, host: number): string {
  return `${base}.${host}`;
}

export function hostPart(ip: string): number {
  return ipaddr.IPv4.parse(ip).octets[3]!;
}

export function inSubnet(ip: string, cidr: string): boolean {
  if (!ipaddr.IPv4.isValidFourPartDecimal(ip)) return false;
  return ipaddr.IPv4.parse(ip).match(ipaddr.IPv4.parseCIDR(cidr));
}
