/**
 * Relay connections over keyset pagination. A cursor names the list it came from and the
 * account it belongs to, so a cursor from another list or another account is refused
 * instead of silently paging somewhere else.
 */
import { createHash } from "node:crypto";
import { badInput } from "../errors";
import { hasLoneSurrogate } from "./unicode";

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

export interface CursorPayload {
  /** Which list issued the cursor, e.g. "users" or "devices:ANY". */
  list: string;
  accountId: string;
  /** The sort key of the last row on the previous page. */
  after: string;
}

/**
 * A list is named in its cursor by a hash: its name holds the path prefix, up to 512 characters
 * that JSON may double (`"` and `\` are legal in paths), which made cursors too long to accept
 * back, so the next page could never be reached.
 */
const listTag = (list: string) =>
  createHash("sha256").update(list).digest("base64url").slice(0, 16);

export function encodeCursor(payload: CursorPayload): string {
  const { list, accountId, after } = payload;
  return Buffer.from(JSON.stringify([listTag(list), accountId, after])).toString("base64url");
}

const invalidMarker = () => badInput("Invalid Marker.");

export function decodeCursor(cursor: string, list: string, accountId: string): string {
  if (cursor.length < 1 || cursor.length > 1024 || !/^[A-Za-z0-9_-]+$/.test(cursor)) {
    throw invalidMarker();
  }
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalidMarker();
  }
  if (
    !Array.isArray(decoded) ||
    decoded.length !== 3 ||
    decoded[0] !== listTag(list) ||
    decoded[1] !== accountId ||
    typeof decoded[2] !== "string" ||
    // Text PostgreSQL cannot hold: a marker this service made never contains it.
    decoded[2].includes("\0") ||
    hasLoneSurrogate(decoded[2])
  ) {
    throw invalidMarker();
  }
  return decoded[2];
}

/**
 * The sort key a page starts after, or undefined for the first page. Only an absent cursor
 * means the first page: an empty one is a bad cursor like any other, or a client whose cursor
 * handling produced "" would be sent back to page one forever.
 */
export function startAfter(
  after: string | null | undefined,
  list: string,
  accountId: string,
): string | undefined {
  return after === undefined || after === null ? undefined : decodeCursor(after, list, accountId);
}

export function checkPageSize(first: number | null | undefined): number {
  const size = first ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE_SIZE) {
    throw badInput(
      "1 validation error detected: Value at 'first' failed to satisfy constraint: " +
        `Member must have value between 1 and ${MAX_PAGE_SIZE}`,
    );
  }
  return size;
}

export interface Page<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

/**
 * Builds a page from rows fetched with `take: size + 1`: the extra row only tells whether
 * there is a next page, so no second COUNT query is needed.
 */
export function toPage<T>(
  rows: T[],
  size: number,
  sortKey: (row: T) => string,
  list: string,
  accountId: string,
): Page<T> {
  const hasNextPage = rows.length > size;
  const nodes = hasNextPage ? rows.slice(0, size) : rows;
  const edges = nodes.map((node) => ({
    node,
    cursor: encodeCursor({ list, accountId, after: sortKey(node) }),
  }));
  return {
    edges,
    pageInfo: { hasNextPage, endCursor: edges.length ? edges[edges.length - 1]!.cursor : null },
  };
}
