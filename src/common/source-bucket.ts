/**
 * The "source" that attempt budgets count per: the caller's address, folded so that one
 * client cannot pass for many. An IPv6 client usually holds a whole /64 (a home line, a cloud
 * VM), so IPv6 sources are their /64; an IPv4-mapped IPv6 address is its IPv4 address; and
 * every spelling of one address is one source. Anything that does not parse as an address
 * shares one bucket, the strict choice, since only a misconfigured proxy would pass one on.
 *
 * Audit records keep the exact address; only budget keys use the bucket.
 */
import ipaddr from "ipaddr.js";
import proxyaddr from "proxy-addr";

export function sourceBucket(address: string): string {
  if (!ipaddr.isValid(address)) return "unparsed";
  const parsed = ipaddr.process(address);
  if (parsed.kind() === "ipv4") return parsed.toString();
  return ipv6Prefix(parsed as ipaddr.IPv6, 64);
}

/**
 * The /48 an IPv6 source belongs to, or null for IPv4 and junk. A /64 per source is not enough
 * on its own, since tunnel brokers and some ISPs hand out a whole /48, which holds 65,536 /64s:
 * the budgets of rare, costly actions also hold each /48 to a larger budget of its own
 * (src/common/redis-budgets.ts `perSource`).
 */
export function sourceSite(address: string): string | null {
  if (!ipaddr.isValid(address)) return null;
  const parsed = ipaddr.process(address);
  return parsed.kind() === "ipv6" ? ipv6Prefix(parsed as ipaddr.IPv6, 48) : null;
}

function ipv6Prefix(address: ipaddr.IPv6, bits: 48 | 64): string {
  const parts = address.parts.slice(0, bits / 16);
  return `${parts.map((part) => part.toString(16)).join(":")}::/${bits}`;
}

/**
 * The caller's address for audit records, notices and budgets: what Express derived (the
 * trusted proxy's X-Forwarded-For entry, or the socket's peer) when it is an address at all,
 * else the socket's peer. A proxy passes a client's own header text through, and that text
 * must not reach a security email as "where this came from".
 */
export function clientAddress(derived: string | undefined, peer: string | undefined): string {
  const address = derived === undefined ? undefined : withoutPort(derived);
  if (address && ipaddr.isValid(address)) return address;
  if (peer && ipaddr.isValid(peer)) return peer;
  return "unknown";
}

/**
 * Express's `trust proxy` for TRUST_PROXY: a hop count as it is; a list of proxies as a test
 * that reads each X-Forwarded-For entry without its port. Express asks about each entry as
 * written, and `10.0.0.5:80` parses as no address, so a trusted proxy that writes its own entry
 * with a port ended the walk there, and every client behind it shared that proxy's budget.
 */
export function trustProxy(
  setting: number | string[],
): number | ((address: string, hop: number) => boolean) {
  if (typeof setting === "number") return setting;
  const trusted = proxyaddr.compile(setting);
  return (address, hop) => trusted(withoutPort(address), hop);
}

/**
 * Some proxies (Azure Application Gateway, for one) write `address:port` into X-Forwarded-For.
 * Taken as it was, no such entry parsed, so every client fell back to the proxy's own address
 * and shared one budget: one attacker's wrong passwords locked everyone out.
 */
function withoutPort(text: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(text); // [v6] or [v6]:port
  if (bracketed) return bracketed[1]!;
  const v4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(text);
  return v4WithPort ? v4WithPort[1]! : text;
}
