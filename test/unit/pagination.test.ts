import { describe, expect, it } from "vitest";
import { checkPageSize, decodeCursor, encodeCursor, toPage } from "../../src/common/pagination";

describe("cursors", () => {
  it("round-trips the sort key for the same list and account", () => {
    const cursor = encodeCursor({ list: "users:/", accountId: "123456789012", after: "bob" });
    expect(decodeCursor(cursor, "users:/", "123456789012")).toBe("bob");
  });

  it.each([
    ["another account", "users:/", "999999999999"],
    ["another list", "devices:ANY", "123456789012"],
  ])("refuses a cursor replayed against %s", (_label, list, accountId) => {
    const cursor = encodeCursor({ list: "users:/", accountId: "123456789012", after: "bob" });
    expect(() => decodeCursor(cursor, list, accountId)).toThrow("Invalid Marker.");
  });

  it.each([
    "",
    "not base64 !",
    "x".repeat(2000),
    Buffer.from("{}").toString("base64url"),
    Buffer.from('["a","b",3]').toString("base64url"),
    // Text PostgreSQL cannot hold, as a client could write it into a marker of its own.
    encodeCursor({ list: "users:/", accountId: "123456789012", after: "\ud800" }),
    encodeCursor({ list: "users:/", accountId: "123456789012", after: "a\u0000" }),
  ])("refuses malformed cursor %#", (cursor) => {
    expect(() => decodeCursor(cursor, "users:/", "123456789012")).toThrow("Invalid Marker.");
  });

  it("stays short enough to be accepted back whatever the list's name", () => {
    const list = `users:/${'"'.repeat(255)}${"\\".repeat(255)}/`;
    const cursor = encodeCursor({ list, accountId: "123456789012", after: "x".repeat(256) });
    expect(cursor.length).toBeLessThanOrEqual(1024);
    expect(decodeCursor(cursor, list, "123456789012")).toBe("x".repeat(256));
  });
});

describe("page size", () => {
  it("defaults to 100 like AWS MaxItems and allows 1 to 1000", () => {
    expect(checkPageSize(undefined)).toBe(100);
    expect(checkPageSize(1)).toBe(1);
    expect(checkPageSize(1000)).toBe(1000);
    expect(() => checkPageSize(0)).toThrow();
    expect(() => checkPageSize(1001)).toThrow();
  });
});

describe("toPage", () => {
  it("uses the extra row only to say there is a next page", () => {
    const page = toPage(["a", "b", "c"], 2, (s) => s, "l", "123456789012");
    expect(page.edges.map((e) => e.node)).toEqual(["a", "b"]);
    expect(page.pageInfo.hasNextPage).toBe(true);
    expect(decodeCursor(page.pageInfo.endCursor!, "l", "123456789012")).toBe("b");
    const last = toPage(["a"], 2, (s) => s, "l", "123456789012");
    expect(last.pageInfo).toMatchObject({ hasNextPage: false });
  });
});
