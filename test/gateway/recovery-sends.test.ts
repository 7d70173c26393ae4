/**
 * Root recovery sends a code by email and by text message, to contact details nobody verified.
 * Budgets per source and per recipient (src/recovery/recovery-sends.ts) stop anyone from
 * pumping messages to a phone of their choice through accounts of their own.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IPV6_SITE_SHARE } from "../../src/common/redis-budgets";
import { createTestAccount, PASSWORD, testPhone } from "../support/fixtures";
import { errorCode, ok } from "../support/graphql";
import { from } from "../support/signin";
import { startStack, type Stack } from "../support/stack";

const PER_RECIPIENT = 2;
const PER_SOURCE = 3;

/** Sources by X-Forwarded-For; and recovery after recovery, so only the budgets hold one back. */
const BACK_TO_BACK = { TRUST_PROXY: "1", ROOT_RECOVERY_COOLDOWN_SECONDS: "0" };

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    env: {
      ...BACK_TO_BACK,
      ROOT_RECOVERY_SENDS_PER_RECIPIENT: String(PER_RECIPIENT),
      ROOT_RECOVERY_SENDS_PER_SOURCE: String(PER_SOURCE),
    },
  });
});
afterAll(async () => {
  await stack?.stop();
});

const START = `mutation($input: StartRootRecoveryInput!) {
  startRootRecovery(input: $input) { smsSentTo }
}`;

let lastOctet = 0;
const newSource = () => `203.0.113.${++lastOctet}`;

/** An account as anyone may sign one up: any email, any phone. */
async function accountWithPhone(phone: string) {
  const email = `pump-${randomUUID()}@example.com`;
  const data = ok(
    await stack.gql<{ createAccount: { account: { accountId: string } } }>(
      `mutation($input: CreateAccountInput!) {
        createAccount(input: $input) { account { accountId } }
      }`,
      { input: { email, phone, password: PASSWORD } },
    ),
  );
  return { email, accountId: data.createAccount.account.accountId };
}

const startRecovery = (email: string, source: string, target = stack) =>
  target.gql(START, { input: { email, password: PASSWORD } }, undefined, from(source));

const textsTo = (phone: string) =>
  stack.db.outboxMessage.count({ where: { channel: "SMS", recipient: phone } });

/** Makes an account as old as one that existed long before anyone thought to attack it. */
const backdate = (accountId: string, target = stack) =>
  target.db.account.update({
    where: { id: accountId },
    data: { createdAt: new Date(Date.now() - 30 * 24 * 3600 * 1000) },
  });

describe("root recovery messages", () => {
  it("reach one phone number only so often from new accounts, however many name it", async () => {
    const phone = testPhone();
    const accounts = [];
    for (let i = 0; i <= PER_RECIPIENT; i++) accounts.push(await accountWithPhone(phone));
    for (const account of accounts.slice(0, PER_RECIPIENT)) {
      ok(await startRecovery(account.email, newSource()));
    }
    const last = accounts.at(-1)!;
    const refused = await startRecovery(last.email, newSource());
    expect(errorCode(refused)).toBe("RATE_LIMITED");
    expect(Number(refused.errors![0]!.extensions!.retryAfterSeconds)).toBeGreaterThan(0);
    expect(await textsTo(phone)).toBe(PER_RECIPIENT);
    // The refused recovery left nothing behind but its audit record.
    expect(await stack.db.rootRecovery.count({ where: { accountId: last.accountId } })).toBe(0);
    const denied = await stack.db.auditEvent.findFirstOrThrow({
      where: { accountId: last.accountId, action: "StartRootRecovery" },
    });
    expect(denied).toMatchObject({ outcome: "denied", detail: { error: "RATE_LIMITED" } });
  });

  it("cannot be spent for an established account by new accounts naming its phone", async () => {
    const phone = testPhone();
    const owner = await accountWithPhone(phone);
    await backdate(owner.accountId);
    for (let i = 0; i < PER_RECIPIENT; i++) {
      ok(await startRecovery((await accountWithPhone(phone)).email, newSource()));
    }
    const stranger = await accountWithPhone(phone);
    expect(errorCode(await startRecovery(stranger.email, newSource()))).toBe("RATE_LIMITED");
    // The owner's own recoveries still reach the phone, up to their own budget.
    for (let i = 0; i < PER_RECIPIENT; i++) ok(await startRecovery(owner.email, newSource()));
    expect(errorCode(await startRecovery(owner.email, newSource()))).toBe("RATE_LIMITED");
    expect(await textsTo(phone)).toBe(2 * PER_RECIPIENT);
  });

  it("are started from one source only so often, over all accounts; other sources go on", async () => {
    const source = newSource();
    for (let i = 0; i < PER_SOURCE; i++) {
      ok(await startRecovery((await accountWithPhone(testPhone())).email, source));
    }
    const next = await accountWithPhone(testPhone());
    expect(errorCode(await startRecovery(next.email, source))).toBe("RATE_LIMITED");
    // The limit holds that source back, not the account: its owner, elsewhere, goes ahead.
    ok(await startRecovery(next.email, newSource()));
  });

  it("are started from one IPv6 /48 only a few sources' worth, however many /64s it uses", async () => {
    const siteBudget = PER_SOURCE * IPV6_SITE_SHARE;
    for (let i = 0; i < siteBudget; i++) {
      const network = Math.floor(i / PER_SOURCE) + 1;
      ok(
        await startRecovery(
          (await accountWithPhone(testPhone())).email,
          `2001:db8:55:${network}::1`,
        ),
      );
    }
    const next = await accountWithPhone(testPhone());
    expect(errorCode(await startRecovery(next.email, "2001:db8:55:ffff::1"))).toBe("RATE_LIMITED");
    ok(await startRecovery(next.email, "2001:db8:56::1"));
  });
});

describe("root recovery messages over the whole service", () => {
  const SERVICE_WIDE = 3;
  let capped: Stack;
  beforeAll(async () => {
    capped = await startStack({
      env: { ...BACK_TO_BACK, ROOT_RECOVERY_SENDS_SERVICE_WIDE: String(SERVICE_WIDE) },
    });
  });
  afterAll(async () => {
    await capped?.stop();
  });

  it("stop at the service-wide cap for new accounts, whoever asks from wherever, and say so in /metrics", async () => {
    const accounts = [];
    for (let i = 0; i <= SERVICE_WIDE; i++) accounts.push(await createTestAccount(capped));
    const established = await createTestAccount(capped);
    await backdate(established.accountId, capped);
    const start = (email: string) => startRecovery(email, newSource(), capped);
    for (const account of accounts.slice(0, SERVICE_WIDE)) ok(await start(account.email));
    const last = accounts.at(-1)!;
    expect(errorCode(await start(last.email))).toBe("RATE_LIMITED");
    expect(await capped.db.outboxMessage.count({ where: { recipient: last.phone } })).toBe(0);
    const metrics = await (await fetch(`${capped.origin}/metrics`)).text();
    expect(metrics).toMatch(
      /^mfa_gateway_budget_refusals_total\{budget="recovery_service_wide"\} 1$/m,
    );
    // Fresh accounts cannot shut recovery off for an established one.
    ok(await start(established.email));
  });
});
