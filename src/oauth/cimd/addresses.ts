// Special-use addresses (draft-ietf-oauth-client-id-metadata-document-01 §6.5; RFC 6890, RFC 6761 §6.3 and the
// IANA IPv4/IPv6 special-purpose registries). A document is fetched only from globally routable addresses, so a
// client_id cannot make this server reach its own network; CIMD_ALLOW_LOOPBACK lets loopback, and only loopback,
// through for local development.
import { isIPv4, isIPv6 } from 'node:net';

const IPV4_SPECIAL: readonly (readonly [string, number, string])[] = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'shared (CGNAT)'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'IETF protocol assignment'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, '6to4 relay'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'], // includes the limited broadcast address
];

const IPV6_SPECIAL: readonly (readonly [string, number, string])[] = [
  ['fc00::', 7, 'unique-local (private)'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'site-local'],
  ['ff00::', 8, 'multicast'],
  ['100::', 64, 'discard-only'],
  ['64:ff9b:1::', 48, 'local-use NAT64'],
  ['2001:db8::', 32, 'documentation'],
  ['2001::', 23, 'IETF protocol assignment'], // Teredo, benchmarking, ORCHID…
  ['2002::', 16, '6to4'],
  ['3fff::', 20, 'documentation'],
];

function parseIPv4(address: string): number | undefined {
  if (!isIPv4(address)) return undefined;
  return address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

/** Eight 16-bit groups, or undefined. A zone index (`%eth0`) is dropped. */
function parseIPv6(address: string): number[] | undefined {
  let a = address.toLowerCase().replace(/%.*$/, '');
  if (!isIPv6(a)) return undefined;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (dotted) {
    const v4 = parseIPv4(dotted[1]!);
    if (v4 === undefined) return undefined;
    a = `${a.slice(0, dotted.index)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const [head, tail] = a.split('::') as [string, string | undefined];
  const parts = (s: string) => (s === '' ? [] : s.split(':').map((g) => Number.parseInt(g, 16)));
  const h = parts(head);
  const t = tail === undefined ? [] : parts(tail);
  const fill = tail === undefined ? [] : new Array<number>(8 - h.length - t.length).fill(0);
  const groups = [...h, ...fill, ...t];
  return groups.length === 8 ? groups : undefined;
}

function inIPv4Prefix(ip: number, base: string, bits: number): boolean {
  const size = 2 ** (32 - bits);
  return Math.floor(ip / size) === Math.floor(parseIPv4(base)! / size);
}

function inIPv6Prefix(groups: number[], base: string, bits: number): boolean {
  const b = parseIPv6(base)!;
  for (let i = 0; i < 8 && bits > 0; i++, bits -= 16) {
    const mask = bits >= 16 ? 0xffff : (0xffff << (16 - bits)) & 0xffff;
    if ((groups[i]! & mask) !== (b[i]! & mask)) return false;
  }
  return true;
}

function ipv4Range(ip: number): string | undefined {
  return IPV4_SPECIAL.find(([base, bits]) => inIPv4Prefix(ip, base, bits))?.[2];
}

/**
 * The special-use range `address` falls in (RFC 6890, RFC 6761 §6.3, the IANA IPv4/IPv6 special-purpose
 * registries), or undefined when it is globally routable. IPv4 embedded in IPv6 (mapped, NAT64) is judged as
 * the IPv4 address it reaches; anything that is not an IP address at all counts as special-use.
 */
export function specialUseRange(address: string): string | undefined {
  const v4 = parseIPv4(address);
  if (v4 !== undefined) return ipv4Range(v4);
  const g = parseIPv6(address);
  if (g === undefined) return 'invalid';
  if (g.every((x) => x === 0)) return 'unspecified';
  if (g.slice(0, 7).every((x) => x === 0) && g[7] === 1) return 'loopback';
  const embedded = g[6]! * 65536 + g[7]!;
  if (inIPv6Prefix(g, '::ffff:0:0', 96)) return ipv4Range(embedded); // IPv4-mapped
  if (inIPv6Prefix(g, '64:ff9b::', 96)) return ipv4Range(embedded); // NAT64 well-known prefix, RFC 6052
  const named = IPV6_SPECIAL.find(([base, bits]) => inIPv6Prefix(g, base, bits))?.[2];
  if (named) return named;
  // Only 2000::/3 is allocated as global unicast; the rest (IPv4-compatible ::/96 included) is reserved.
  return inIPv6Prefix(g, '2000::', 3) ? undefined : 'reserved';
}

/** Why connecting to `address` is refused, or undefined when it is allowed. */
export function addressProblem(address: string, allowLoopback: boolean): string | undefined {
  const range = specialUseRange(address);
  if (range === undefined || (range === 'loopback' && allowLoopback)) return undefined;
  return range;
}

/** One spelling per address, so a connected peer can be compared with the addresses that were vetted. */
export function canonicalAddress(address: string): string {
  const g = parseIPv6(address);
  if (g === undefined) return address;
  // An IPv4 peer on a dual-stack socket reports itself as ::ffff:a.b.c.d.
  if (inIPv6Prefix(g, '::ffff:0:0', 96)) return `${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`;
  return g.map((x) => x.toString(16)).join(':');
}
