/**
 * Tag lists as IAM keeps them: keys unique without regard to case, listed in key order, at
 * most 50 (shared/reference/aws-iam-virtual-mfa.md §3.9).
 */
import { limitExceeded } from "../errors";
import { MAX_TAGS, type Tag } from "../common/iam-names";

const fold = (key: string) => key.toLowerCase();

export function sortTags(tags: Tag[]): Tag[] {
  return [...tags].sort((a, b) => {
    const [x, y] = [fold(a.key), fold(b.key)];
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

/** Adds or overwrites; a key given in another case replaces the old one, spelling included. */
export function mergeTags(existing: Tag[], added: Tag[]): Tag[] {
  const byKey = new Map(existing.map((t) => [fold(t.key), t]));
  for (const tag of added) byKey.set(fold(tag.key), { key: tag.key, value: tag.value });
  if (byKey.size > MAX_TAGS) {
    throw limitExceeded(`Cannot exceed quota for TagsPerMFADevice: ${MAX_TAGS}.`);
  }
  return sortTags([...byKey.values()]);
}

/** Removes the given keys, in any case; keys that are not there are ignored, as IAM does. */
export function removeTags(existing: Tag[], keys: string[]): Tag[] {
  const removed = new Set(keys.map(fold));
  return existing.filter((t) => !removed.has(fold(t.key)));
}
