/**
 * The notification outbox and its sender: messages are rows written with their event; a
 * sender claims due rows with FOR UPDATE SKIP LOCKED (so several gateways may run one),
 * delivers them (to the log in development, SMS to a webhook when configured), retries with
 * backoff and counts attempts. Nothing secret reaches the outbox or the logs but the one-time
 * codes the outbox exists to send, and those are blanked once delivered.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GatewayConfig } from "../../src/config";
import { createLogger } from "../../src/logger";
import {
  createOutboxSender,
  DELIVERED_SECRET_BODY,
  UNDELIVERED_SECRET_BODY,
} from "../../src/notifications/outbox-sender";
import {
  configuredTransports,
  type OutgoingMessage,
  type Transport,
} from "../../src/notifications/transports";
import { ok } from "../support/graphql";
import { createTestAccount, createTestUser, PASSWORD, type TestAccount } from "../support/fixtures";
import {
  actionsOf,
  answer,
  challengeFor,
  enrolForSignIn,
  enrolRootDevice,
  from,
  generateRecoveryCodes,
  nextCode,
  outboxOf,
  passwordSession,
  randomSource,
  SIGN_IN,
  wrongCode,
} from "../support/signin";
import { logSink, startStack, type Stack } from "../support/stack";
import { base32Decode } from "../support/totp";

let stack: Stack;
beforeAll(async () => {
  // Recoveries are this file's way to queue messages, all from one address; the send
  // budgets have a file of their own (recovery-sends.test.ts).
  stack = await startStack({ env: { TRUST_PROXY: "1", ROOT_RECOVERY_SENDS_PER_SOURCE: "1000" } });
});
afterAll(async () => {
  await stack?.stop();
});

const START = `mutation($input: StartRootRecoveryInput!) { startRootRecovery(input: $input) { recoveryToken } }`;

/** Starts a root recovery, which writes one email and one SMS, both with a one-time code. */
async function recoveryMessages(account: TestAccount) {
  const res = ok(
    await stack.gql<{ startRootRecovery: { recoveryToken: string } }>(START, {
      input: { email: account.email, password: PASSWORD },
    }),
  );
  const messages = await outboxOf(stack, account.accountId, "root-recovery-code");
  return { recoveryToken: res.startRootRecovery.recoveryToken, messages };
}

/**
 * Puts the account's messages at the head of the queue, so a sender claims them first
 * whatever other test files left in the shared test database.
 */
async function first(account: TestAccount) {
  await stack.db.outboxMessage.updateMany({
    where: { accountId: account.accountId, sentAt: null },
    data: { nextAttemptAt: new Date(0) },
  });
}

function senderFor(
  lines: string[],
  options: {
    transports?: Record<"EMAIL" | "SMS", Transport>;
    batchSize?: number;
    config?: Partial<GatewayConfig>;
  } = {},
) {
  return createOutboxSender({
    db: stack.db,
    logger: createLogger("gateway", "info", logSink(lines)),
    config: { ...stack.config, ...options.config },
    transports: options.transports,
    batchSize: options.batchSize ?? 2,
  });
}

/** Runs one round of a sender whose transports only record; the ids it delivered. */
async function deliveredByOneRound(): Promise<bigint[]> {
  const delivered: bigint[] = [];
  const recording: Transport = {
    name: "recording",
    deliver: async (m) => void delivered.push(m.id),
  };
  await senderFor([], { transports: { EMAIL: recording, SMS: recording } }).runOnce();
  return delivered;
}

describe("writing messages", () => {
  it("writes a notice only when its event commits", async () => {
    const account = await createTestAccount(stack);
    // A refused recovery start (wrong password) writes nothing; a refused repeat neither.
    await stack.gql(START, { input: { email: account.email, password: "not the password" } });
    expect(await outboxOf(stack, account.accountId)).toHaveLength(0);
    await recoveryMessages(account);
    await stack.gql(START, { input: { email: account.email, password: PASSWORD } });
    expect(await outboxOf(stack, account.accountId)).toHaveLength(2);
  });
});

describe("the sender", () => {
  it("delivers to the log in development: id, channel and masked recipient, never the body", async () => {
    const account = await createTestAccount(stack);
    const { messages } = await recoveryMessages(account);
    const codes = messages.map((m) => /\b(\d{8})\b/.exec(m.body)![1]!);
    await first(account);
    const lines: string[] = [];
    const result = await senderFor(lines).runOnce();
    expect(result).toEqual({ sent: 2, failed: 0 });
    const rows = await outboxOf(stack, account.accountId);
    for (const row of rows) {
      expect(row.sentAt).not.toBeNull();
      expect(row.attempts).toBe(1);
      expect(row.lastError).toBeNull();
      // The one-time code is not kept once it has gone out.
      expect(row.body).toBe(DELIVERED_SECRET_BODY);
    }
    const sent = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === "outbox message sent");
    expect(sent).toHaveLength(2);
    expect(sent.map((l) => [l.outboxId, l.channel, l.transport]).sort()).toEqual(
      rows.map((r) => [String(r.id), r.channel, "log"]).sort(),
    );
    expect(sent.find((l) => l.channel === "SMS")!.to).toBe(`+*******${account.phone.slice(-4)}`);
    expect(sent.find((l) => l.channel === "EMAIL")!.to).toBe("r***@example.com");
    const text = lines.join("\n");
    for (const secret of [...codes, account.email, account.phone])
      expect(text).not.toContain(secret);
    // Sent messages are not sent again.
    await first(account);
    const again: string[] = [];
    await senderFor(again).runOnce();
    for (const row of rows) expect(again.join("\n")).not.toContain(`"outboxId":"${row.id}"`);
  });

  it("retries a failed delivery with growing delays, counting attempts, and gives up at the limit", async () => {
    const account = await createTestAccount(stack);
    await recoveryMessages(account);
    const failing: Transport = {
      name: "broken",
      deliver: async () => {
        throw new Error("connection refused");
      },
    };
    const lines: string[] = [];
    const sender = senderFor(lines, {
      transports: { EMAIL: failing, SMS: failing },
      config: { OUTBOX_MAX_ATTEMPTS: 3 },
    });
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      await first(account);
      const started = Date.now();
      expect(await sender.runOnce()).toEqual({ sent: 0, failed: 2 });
      const rows = await outboxOf(stack, account.accountId);
      for (const row of rows) {
        expect(row).toMatchObject({
          attempts: attempt,
          lastError: "connection refused",
          sentAt: null,
        });
        expect(row.failedAt === null).toBe(attempt < 3);
      }
      delays.push(Math.round((rows[0]!.nextAttemptAt.getTime() - started) / 1000));
    }
    expect(delays[0]).toBeGreaterThanOrEqual(9);
    expect(delays[1]).toBeGreaterThanOrEqual(2 * delays[0]! - 1);
    expect(lines.join("\n")).toContain("outbox message failed for good");
    // Failed for good, the one-time codes are not kept in the rows either.
    for (const row of await outboxOf(stack, account.accountId)) {
      expect(row.body).toBe(UNDELIVERED_SECRET_BODY);
    }
    // A message that failed for good is never claimed again.
    await first(account);
    const delivered = await deliveredByOneRound();
    const rows = await outboxOf(stack, account.accountId);
    for (const row of rows) {
      expect(delivered).not.toContain(row.id);
      expect(row).toMatchObject({ attempts: 3, sentAt: null });
    }
  });

  it("gives a one-time code up unsent once it has lapsed, and keeps it no longer", async () => {
    const account = await createTestAccount(stack);
    await recoveryMessages(account);
    const lapsedAt = new Date(Date.now() - (stack.config.ROOT_RECOVERY_TTL_SECONDS + 5) * 1000);
    await stack.db.outboxMessage.updateMany({
      where: { accountId: account.accountId },
      data: { createdAt: lapsedAt, nextAttemptAt: new Date(0) },
    });
    const delivered = await deliveredByOneRound();
    const rows = await outboxOf(stack, account.accountId);
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(delivered).not.toContain(row.id);
      expect(row).toMatchObject({ sentAt: null, body: UNDELIVERED_SECRET_BODY });
      expect(row.failedAt).not.toBeNull();
    }
  });

  it("never hands one message to two senders running at once", async () => {
    const account = await createTestAccount(stack);
    for (let i = 0; i < 4; i++) {
      await stack.db.rootRecovery.updateMany({
        where: { accountId: account.accountId },
        data: { createdAt: new Date(Date.now() - 120_000) },
      });
      await recoveryMessages(account);
    }
    await first(account);
    const delivered: bigint[] = [];
    const slow: Transport = {
      name: "slow",
      deliver: async (message: OutgoingMessage) => {
        await new Promise((r) => setTimeout(r, 30));
        delivered.push(message.id);
      },
    };
    const transports = { EMAIL: slow, SMS: slow };
    const senders = [0, 1, 2].map(() => senderFor([], { transports, batchSize: 3 }));
    await Promise.all(senders.map((s) => s.runOnce()));
    const mine = (await outboxOf(stack, account.accountId)).map((r) => r.id);
    const deliveredMine = delivered.filter((id) => mine.includes(id));
    expect(new Set(deliveredMine).size).toBe(deliveredMine.length);
    expect(deliveredMine.length).toBe(8);
  });

  it("POSTs text messages to SMS_WEBHOOK_URL as JSON, and retries when it answers with an error", async () => {
    const received: { id: string; to: string; body: string }[] = [];
    let status = 503;
    const server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (chunk) => (body += chunk));
      req.on("end", () => {
        received.push(JSON.parse(body));
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sms`;
      const account = await createTestAccount(stack);
      const { messages } = await recoveryMessages(account);
      const sms = messages.find((m) => m.channel === "SMS")!;
      // Only the SMS is due, so the email (logged) does not get in the way.
      await stack.db.outboxMessage.update({
        where: { id: sms.id },
        data: { nextAttemptAt: new Date(0) },
      });
      const transports = configuredTransports({ ...stack.config, SMS_WEBHOOK_URL: url });
      const sender = senderFor([], { transports, batchSize: 1 });
      await sender.runOnce();
      expect(received).toEqual([{ id: String(sms.id), to: account.phone, body: sms.body }]);
      const failed = await stack.db.outboxMessage.findUniqueOrThrow({ where: { id: sms.id } });
      expect(failed).toMatchObject({
        sentAt: null,
        attempts: 1,
        lastError: "SMS webhook answered HTTP 503",
      });
      status = 204;
      await stack.db.outboxMessage.update({
        where: { id: sms.id },
        data: { nextAttemptAt: new Date(0) },
      });
      await sender.runOnce();
      const sent = await stack.db.outboxMessage.findUniqueOrThrow({ where: { id: sms.id } });
      expect(sent).toMatchObject({ attempts: 2, lastError: null, body: DELIVERED_SECRET_BODY });
      expect(sent.sentAt).not.toBeNull();
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("runs on a timer once started, and stops cleanly", async () => {
    const account = await createTestAccount(stack);
    await recoveryMessages(account);
    await first(account);
    const sender = senderFor([], { config: { OUTBOX_POLL_INTERVAL_MS: 50 }, batchSize: 50 });
    sender.start();
    try {
      for (let i = 0; i < 100; i++) {
        const rows = await outboxOf(stack, account.accountId);
        if (rows.every((r) => r.sentAt)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await sender.stop();
    }
    expect((await outboxOf(stack, account.accountId)).every((r) => r.sentAt !== null)).toBe(true);
  });

  it("sends each message once when a slow provider makes a batch outlast its lease", async () => {
    const accounts = [await createTestAccount(stack), await createTestAccount(stack)];
    const ours = new Set<bigint>();
    for (const account of accounts) {
      for (const m of (await recoveryMessages(account)).messages) ours.add(m.id);
      await first(account);
    }
    const deliveries: bigint[] = [];
    const slow: Transport = {
      name: "slow",
      deliver: async (message) => {
        deliveries.push(message.id);
        await new Promise((resolve) => setTimeout(resolve, 700));
      },
    };
    // Two gateways' senders with a lease of 1 s; each of the first's four deliveries takes
    // 0.7 s, so the second claims what the first has not yet sent.
    const sender = () =>
      createOutboxSender({
        db: stack.db,
        logger: createLogger("gateway", "silent"),
        config: stack.config,
        transports: { EMAIL: slow, SMS: slow },
        batchSize: 4,
        leaseSeconds: 1,
      });
    await Promise.all([
      sender().runOnce(),
      new Promise((resolve) => setTimeout(resolve, 1200)).then(() => sender().runOnce()),
    ]);
    const ourDeliveries = deliveries.filter((id) => ours.has(id));
    expect(ourDeliveries.sort()).toEqual([...ours].sort());
  });

  it("sends one-time codes ahead of notices queued before them", async () => {
    const account = await createTestAccount(stack);
    const notice = await stack.db.outboxMessage.create({
      data: {
        accountId: account.accountId,
        channel: "EMAIL",
        recipient: account.email,
        kind: "test-notice",
        subject: "A notice",
        body: "Queued first.",
        containsSecret: false,
      },
    });
    await recoveryMessages(account);
    await first(account);
    const order: string[] = [];
    const record: Transport = {
      name: "record",
      deliver: async (message) => void order.push(message.kind),
    };
    await senderFor([], { transports: { EMAIL: record, SMS: record }, batchSize: 1 }).runOnce();
    expect(order).toEqual(["root-recovery-code"]);
    expect(
      (await stack.db.outboxMessage.findUniqueOrThrow({ where: { id: notice.id } })).sentAt,
    ).toBeNull();
  });
});

describe("secrets", () => {
  it("never reach the outbox, the audit trail or the logs, but for the one-time codes", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "alice");
    const who = { account: account.accountId, userName: "alice" };
    const alicePassword = await passwordSession(stack, who);
    const created = ok(await actionsOf(stack, account.rootToken).createDevice("alice-phone")) as {
      createVirtualMfaDevice: {
        virtualMfaDevice: { serialNumber: string };
        base32StringSeed: string;
      };
    };
    const seed = created.createVirtualMfaDevice.base32StringSeed;
    // enrolForSignIn makes its own device; this one's seed is kept to look for it.
    const device = await enrolForSignIn(stack, account.rootToken, "alice", "alice-laptop");
    const totpCodes: string[] = [];
    const tokens: string[] = [alicePassword, account.rootToken];

    // Sign in with MFA, with wrong codes first (five, so a notice is written).
    const { challenge } = await challengeFor(stack, who);
    tokens.push(challenge);
    for (let i = 0; i < 5; i++) {
      const wrong = await wrongCode(stack, device);
      totpCodes.push(wrong);
      await answer(stack, { challenge, code: wrong }, from(randomSource()));
    }
    const second = await challengeFor(stack, who);
    tokens.push(second.challenge);
    const right = await nextCode(stack, device);
    totpCodes.push(right);
    const mfa = ok(await answer(stack, { challenge: second.challenge, code: right }))
      .answerMfaChallenge.session.token;
    tokens.push(mfa);
    const recoveryCodes = await generateRecoveryCodes(stack, mfa);
    const third = await challengeFor(stack, who);
    tokens.push(third.challenge);
    tokens.push(
      ok(await answer(stack, { challenge: third.challenge, code: recoveryCodes[0]! }))
        .answerMfaChallenge.session.token,
    );
    const stsCode = await nextCode(stack, device);
    totpCodes.push(stsCode);
    const sts = ok(await actionsOf(stack, mfa).getSessionToken(device.serialNumber, stsCode)) as {
      getSessionToken: { token: string };
    };
    tokens.push(sts.getSessionToken.token);
    const root = await enrolRootDevice(stack, account.rootToken);
    const recovery = await recoveryMessages(account);
    tokens.push(recovery.recoveryToken);
    await stack.gql(SIGN_IN, { input: { email: account.email, password: PASSWORD } });

    const secrets = [
      PASSWORD,
      ...tokens,
      ...seedForms(seed),
      ...seedForms(device.seed),
      ...seedForms(root.seed),
      ...recoveryCodes,
      ...recoveryCodes.map((c) => c.replace(/-/g, "")),
    ];
    const outbox = await outboxOf(stack, account.accountId);
    expect(outbox.map((m) => m.kind).sort()).toEqual(
      [
        "mfa-failures",
        "recovery-code-used",
        "recovery-codes-generated",
        "root-recovery-code",
        "root-recovery-code",
      ].sort(),
    );
    const audit = await stack.db.auditEvent.findMany({ where: { accountId: account.accountId } });
    const stored = JSON.stringify([outbox, audit], (_k, v) =>
      typeof v === "bigint" ? String(v) : v,
    );
    const logs = stack.logs.join("\n");
    for (const secret of secrets) {
      expect(stored).not.toContain(secret);
      expect(logs).not.toContain(secret);
    }
    for (const code of totpCodes) {
      const alone = new RegExp(`(^|\\D)${code}(\\D|$)`);
      expect(stored).not.toMatch(alone);
      expect(logs).not.toMatch(alone);
    }
    // The one-time recovery codes are in their own messages and nowhere else.
    const oneTime = recovery.messages.map((m) => /\b(\d{8})\b/.exec(m.body)![1]!);
    const others = outbox.filter((m) => m.kind !== "root-recovery-code");
    for (const code of oneTime) {
      expect(
        JSON.stringify(others, (_k, v) => (typeof v === "bigint" ? String(v) : v)),
      ).not.toContain(code);
      expect(logs).not.toContain(code);
    }
  });
});

function seedForms(base32: string): string[] {
  const raw = base32Decode(base32);
  return [base32, base32.toLowerCase(), raw.toString("hex"), raw.toString("base64")];
}
