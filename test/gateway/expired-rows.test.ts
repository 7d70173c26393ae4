/**
 * The expired-rows cleaner on the real PostgreSQL: rows whose life ended before the retention
 * cutoff go, in batches; rows still alive, or ended more recently, and an account's audit log
 * stay; audit events of no account go after their own, longer retention.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger";
import { createExpiredRowsCleaner } from "../../src/maintenance/expired-rows";
import { createTestAccount } from "../support/fixtures";
import { ok } from "../support/graphql";
import { startStack, type Stack } from "../support/stack";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const HOUR = 3_600_000;
const ago = (ms: number) => new Date(Date.now() - ms);

/** One row of each kind per age, for one new account; returns the ids by age. */
async function seedRows(accountId: string, userId: string) {
  const rows = { old: [] as string[], recent: [] as string[], live: [] as string[] };
  const ages = { old: 48 * HOUR, recent: HOUR, live: -HOUR };
  for (const [age, ms] of Object.entries(ages) as [keyof typeof rows, number][]) {
    const expiresAt = ago(ms);
    const token = () => `test_${randomUUID()}`;
    const session = await stack.db.session.create({
      data: { tokenHash: token(), accountId, userId, kind: "password", expiresAt },
    });
    const challenge = await stack.db.mfaChallenge.create({
      data: { tokenHash: token(), accountId, userId, expiresAt },
    });
    const recovery = await stack.db.rootRecovery.create({
      data: { tokenHash: token(), accountId, emailCodeHash: "x", phoneCodeHash: "y", expiresAt },
    });
    const message = (ended: object) =>
      stack.db.outboxMessage.create({
        data: {
          accountId,
          channel: "EMAIL",
          recipient: "r@example.com",
          kind: "t",
          subject: "s",
          body: "b",
          ...ended,
        },
      });
    const sent = await message(age === "live" ? {} : { sentAt: expiresAt });
    const failed = await message(age === "live" ? {} : { failedAt: expiresAt });
    rows[age].push(session.id, challenge.id, recovery.id, String(sent.id), String(failed.id));
  }
  return rows;
}

async function remaining(accountId: string): Promise<string[]> {
  const where = { accountId };
  const found = await Promise.all([
    stack.db.session.findMany({ where, select: { id: true } }),
    stack.db.mfaChallenge.findMany({ where, select: { id: true } }),
    stack.db.rootRecovery.findMany({ where, select: { id: true } }),
    stack.db.outboxMessage.findMany({ where, select: { id: true } }),
  ]);
  return found.flat().map((row) => String(row.id));
}

describe("deleting ended rows", () => {
  it("deletes sessions, challenges, recoveries and messages that ended before the cutoff", async () => {
    const account = await createTestAccount(stack);
    const root = await stack.db.user.findFirstOrThrow({
      where: { accountId: account.accountId, isRoot: true },
    });
    const rows = await seedRows(account.accountId, root.id);
    // Failed sign-ins naming no account, which anyone can add: one past the 30 days, one within.
    const anonymous = (days: number) =>
      stack.db.auditEvent.create({
        data: {
          action: "SignIn",
          entityType: "User",
          outcome: "failure",
          requestId: randomUUID(),
          createdAt: ago(days * 24 * HOUR),
        },
      });
    const [stale, fresh] = [await anonymous(31), await anonymous(29)];
    // An account's own events are never deleted, however old.
    await stack.db.auditEvent.create({
      data: {
        accountId: account.accountId,
        action: "SignIn",
        entityType: "User",
        outcome: "failure",
        createdAt: ago(400 * 24 * HOUR),
      },
    });
    const auditBefore = await stack.db.auditEvent.count({
      where: { accountId: account.accountId },
    });
    const cleaner = createExpiredRowsCleaner({
      db: stack.db,
      logger: createLogger("gateway", "silent"),
      config: {
        EXPIRED_ROWS_RETENTION_HOURS: 24,
        EXPIRED_ROWS_CLEANUP_INTERVAL_SECONDS: 3600,
        ANONYMOUS_AUDIT_RETENTION_DAYS: 30,
      },
      batchSize: 1, // several statements per table, as a large backlog would take
    });

    const counts = await cleaner.runOnce();
    // Other test files' rows are all younger than a day, so every deletion is one of these.
    expect(counts).toEqual({
      Session: 1,
      MfaChallenge: 1,
      RootRecovery: 1,
      OutboxMessage: 2,
      AnonymousAuditEvent: 1,
    });
    const anonymousLeft = await stack.db.auditEvent.findMany({
      where: { id: { in: [stale.id, fresh.id] } },
      select: { id: true },
    });
    expect(anonymousLeft.map((row) => row.id)).toEqual([fresh.id]);
    // Left behind, it would be past the cutoff in a day, in a test database that is kept.
    await stack.db.auditEvent.delete({ where: { id: fresh.id } });
    const left = await remaining(account.accountId);
    for (const id of rows.old) expect(left).not.toContain(id);
    for (const id of [...rows.recent, ...rows.live]) expect(left).toContain(id);
    // The account's own sign-up session is alive and untouched; the audit log is never deleted.
    ok(
      await stack.gql(
        "{ virtualMfaDevices(first: 1) { edges { cursor } } }",
        {},
        account.rootToken,
      ),
    );
    expect(await stack.db.auditEvent.count({ where: { accountId: account.accountId } })).toBe(
      auditBefore,
    );

    expect(await cleaner.runOnce()).toEqual({
      Session: 0,
      MfaChallenge: 0,
      RootRecovery: 0,
      OutboxMessage: 0,
      AnonymousAuditEvent: 0,
    });
  });
});
