/**
 * HotSql, the few statements that skip Prisma (src/db.ts), on the real PostgreSQL: it must read
 * and write Prisma's UTC timestamps the way Prisma does whatever the process's time zone, and
 * its failures must reach callers as the same typed errors as Prisma's.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createDatabase } from "../../src/db";
import { ErrorCode, formatError } from "../../src/errors";

const url = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/virtual_mfa_test";
const { db, sql } = createDatabase(url, 2);
const zone = process.env.TZ;

afterEach(() => {
  if (zone === undefined) delete process.env.TZ;
  else process.env.TZ = zone;
});
afterAll(async () => {
  await db.$disconnect();
});

/** What a caller of the API would get for this failure. */
const codeFor = async (work: Promise<unknown>) => {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeDefined();
  return formatError({ message: "failed", extensions: {} }, () => {}, error).extensions?.code;
};

describe("HotSql", () => {
  it("reads and writes timestamps without a zone as UTC, as Prisma does, in any zone", async () => {
    process.env.TZ = "Asia/Tokyo"; // nine hours from UTC: a local reading would be off by that
    const stored = new Date("2026-01-02T03:04:05.678Z");
    const [row] = await sql.rows<{ read: Date; written: Date }>(
      `SELECT '2026-01-02 03:04:05.678'::timestamp(3) AS "read", $1::timestamp(3) AS "written"`,
      [stored.toISOString()],
    );
    expect(row!.read.toISOString()).toBe(stored.toISOString());
    expect(row!.written.toISOString()).toBe(stored.toISOString());
    // And what Prisma itself reads back from the same text agrees.
    const [viaPrisma] = await db.$queryRaw<{ read: Date }[]>`
      SELECT '2026-01-02 03:04:05.678'::timestamp(3) AS "read"`;
    expect(viaPrisma!.read.toISOString()).toBe(stored.toISOString());
  });

  it("runs named statements again and again on the same connections", async () => {
    for (let i = 0; i < 5; i++) {
      const [row] = await sql.rows<{ n: number }>(`SELECT $1::int + 1 AS "n"`, [i], "hot-sql-test");
      expect(row!.n).toBe(i + 1);
    }
  });

  it("turns text PostgreSQL cannot store into BAD_USER_INPUT", async () => {
    expect(await codeFor(sql.rows(`SELECT $1::text AS "t"`, ["a\u0000b"]))).toBe(
      ErrorCode.BAD_USER_INPUT,
    );
  });

  it("turns an unreachable PostgreSQL into SERVICE_UNAVAILABLE", async () => {
    const down = createDatabase("postgresql://postgres@127.0.0.1:1/nowhere", 1);
    try {
      expect(await codeFor(down.sql.rows(`SELECT 1`, []))).toBe(ErrorCode.SERVICE_UNAVAILABLE);
    } finally {
      await down.db.$disconnect();
    }
  });

  it("survives PostgreSQL ending its connections, in transactions or idle, and loses no pool slot", async () => {
    // Its own application name, so only its connections are ended, not other tests'.
    const name = `ended-${randomUUID()}`;
    const lost: Error[] = [];
    const target = createDatabase(`${url}?application_name=${name}`, 2, (e) => lost.push(e));
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    const endConnections = () =>
      admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
        [name],
      );
    try {
      // More losses inside a transaction than the pool has connections: each one used to keep
      // its connection checked out for ever, and the third transaction waited for good.
      for (let i = 0; i < 3; i++) {
        const inTransaction = target.db.$transaction(async (tx) => {
          await tx.$queryRaw`SELECT 1`;
          await endConnections();
          await new Promise((r) => setTimeout(r, 100));
          await tx.$queryRaw`SELECT 1`;
        });
        expect(await codeFor(inTransaction)).toBe(ErrorCode.SERVICE_UNAVAILABLE);
      }
      // An idle connection ended: an unheard 'error' event would end the process.
      await target.sql.rows(`SELECT 1`, []);
      await endConnections();
      await new Promise((r) => setTimeout(r, 100));
      expect(lost.length).toBeGreaterThanOrEqual(4);
      expect(await target.sql.rows(`SELECT 2 AS "n"`, [])).toEqual([{ n: 2 }]);
      expect(await target.db.$queryRaw`SELECT 3 AS "n"`).toEqual([{ n: 3 }]);
    } finally {
      await admin.end();
      await target.db.$disconnect();
    }
  }, 20_000);

  it("leaves a bug in a statement an internal error, not a retry-later", async () => {
    expect(await codeFor(sql.rows(`SELECT no_such_column FROM "User"`, []))).toBe(
      ErrorCode.INTERNAL_SERVER_ERROR,
    );
  });
});
