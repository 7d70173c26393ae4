/**
 * In a `u` regex a surrogate pair is one code point, so this matches only a lone surrogate:
 * UTF-16 that is not Unicode text at all, which PostgreSQL (and Prisma before it) refuses.
 */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** True when `text` holds a lone surrogate. */
export function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}
