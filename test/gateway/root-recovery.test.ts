/**
 * Root recovery with alternative factors: the root password, then one code sent to the
 * account's email and one to its phone (read here from the outbox table, as the sender would
 * deliver them) give a RECOVERY session, which may only deactivate root's device and create and
 * enable a new one.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashToken } from "../../src/auth/tokens";
import { errorCode, ok, type GraphQLResponse } from "../support/graphql";
import { createTestAccount, createTestUser, PASSWORD, type TestAccount } from "../support/fixtures";
import {
  actionsOf,
  answer,
  challengeFor,
  enrolForSignIn,
  enrolRootDevice,
  enrolPair,
  nextCode,
  outboxOf,
  passwordSession,
  SIGN_IN,
} from "../support/signin";
import { startStack, type Stack } from "../support/stack";

let stack: Stack;
beforeAll(async () => {
  // Every recovery here comes from 127.0.0.1; the send budgets have a file of their own
  // (recovery-sends.test.ts).
  stack = await startStack({ env: { ROOT_RECOVERY_SENDS_PER_SOURCE: "1000" } });
});
afterAll(async () => {
  await stack?.stop();
});

const START = `mutation($input: StartRootRecoveryInput!) {
  startRootRecovery(input: $input) { recoveryToken expiresAt emailSentTo smsSentTo }
}`;
const COMPLETE = `mutation($input: CompleteRootRecoveryInput!) {
  completeRootRecovery(input: $input) {
    session { token kind mfaAuthenticated expiresAt user { userName isRoot } }
    serialNumbers
  }
}`;

type Started = {
  startRootRecovery: {
    recoveryToken: string;
    expiresAt: string;
    emailSentTo: string;
    smsSentTo: string;
  };
};
type Completed = {
  completeRootRecovery: {
    session: {
      token: string;
      kind: string;
      mfaAuthenticated: boolean;
      expiresAt: string;
      user: { userName: string; isRoot: boolean };
    };
    serialNumbers: string[];
  };
};

const start = (email: string, password = PASSWORD) =>
  stack.gql<Started>(START, { input: { email, password } });
const complete = (recoveryToken: string, emailCode: string, phoneCode: string) =>
  stack.gql<Completed>(COMPLETE, { input: { recoveryToken, emailCode, phoneCode } });

/** The codes of the latest recovery, as the email and the text message carry them. */
async function sentCodes(account: TestAccount) {
  const messages = await outboxOf(stack, account.accountId, "root-recovery-code");
  const email = messages.filter((m) => m.channel === "EMAIL").at(-1)!;
  const sms = messages.filter((m) => m.channel === "SMS").at(-1)!;
  const code = (body: string) => /\b(\d{8})\b/.exec(body)![1]!;
  return { emailCode: code(email.body), phoneCode: code(sms.body), email, sms };
}

/** An account whose root has an MFA device, and a recovery started for it. */
async function rootWithLostDevice() {
  const account = await createTestAccount(stack);
  const device = await enrolRootDevice(stack, account.rootToken);
  const started = ok(await start(account.email)).startRootRecovery;
  return { account, device, started, ...(await sentCodes(account)) };
}

describe("recovering the root user", () => {
  it("goes from password to email and phone codes to a new device, all read from the outbox", async () => {
    const { account, device, started, emailCode, phoneCode, email, sms } =
      await rootWithLostDevice();
    expect(started.recoveryToken).toMatch(/^mfar_/);
    expect(started.emailSentTo).toMatch(/^r\*\*\*@example\.com$/);
    expect(started.smsSentTo).toBe(`+*******${account.phone.slice(-4)}`);
    expect(email).toMatchObject({ recipient: account.email, containsSecret: true, sentAt: null });
    expect(sms).toMatchObject({ recipient: account.phone, containsSecret: true });
    expect(emailCode).not.toBe(phoneCode);

    const done = ok(
      await complete(started.recoveryToken, emailCode, phoneCode),
    ).completeRootRecovery;
    expect(done.session).toMatchObject({
      kind: "RECOVERY",
      mfaAuthenticated: true,
      user: { userName: "root", isRoot: true },
    });
    expect(done.serialNumbers).toEqual([device.serialNumber]);
    const life = (Date.parse(done.session.expiresAt) - Date.now()) / 1000;
    expect(life).toBeGreaterThan(890);
    expect(life).toBeLessThanOrEqual(900);

    const recovery = actionsOf(stack, done.session.token);
    ok(await recovery.deactivate(device.serialNumber));
    // With the old device gone, the password alone signs root in again.
    await passwordSession(stack, { email: account.email });
    // The old device is deleted so the new one can have root's device name again.
    ok(await recovery.deleteDevice(device.serialNumber));
    const created = ok(await recovery.createDevice("root-account-mfa-device")) as {
      createVirtualMfaDevice: {
        virtualMfaDevice: { serialNumber: string };
        base32StringSeed: string;
      };
    };
    const replacement = {
      serialNumber: created.createVirtualMfaDevice.virtualMfaDevice.serialNumber,
      seed: created.createVirtualMfaDevice.base32StringSeed,
    };
    ok(
      await recovery.enable("root", replacement.serialNumber, await enrolPair(stack, replacement)),
    );
    // Root now signs in with the new device.
    const { challenge, serialNumbers } = await challengeFor(stack, { email: account.email });
    expect(serialNumbers).toEqual([replacement.serialNumber]);
    ok(await answer(stack, { challenge, code: await nextCode(stack, replacement) }));

    // The account's email is told, and every step is audited.
    const [notice] = await outboxOf(stack, account.accountId, "root-recovery-completed");
    expect(notice).toMatchObject({ channel: "EMAIL", recipient: account.email });
    const actions = await stack.db.auditEvent.findMany({
      where: { accountId: account.accountId },
      orderBy: { id: "asc" },
      select: { action: true, outcome: true },
    });
    expect(actions).toEqual(
      expect.arrayContaining([
        { action: "StartRootRecovery", outcome: "success" },
        { action: "CompleteRootRecovery", outcome: "success" },
        { action: "DeactivateMFADevice", outcome: "success" },
        { action: "DeleteVirtualMFADevice", outcome: "success" },
        { action: "EnableMFADevice", outcome: "success" },
      ]),
    );
  });

  it("signs out every other session of root, and says so", async () => {
    const { account, device, started, emailCode, phoneCode } = await rootWithLostDevice();
    const LIST = "{ virtualMfaDevices(first: 1) { edges { node { serialNumber } } } }";
    ok(await stack.gql(LIST, {}, account.rootToken));
    const done = ok(
      await complete(started.recoveryToken, emailCode, phoneCode),
    ).completeRootRecovery;
    expect(errorCode(await stack.gql(LIST, {}, account.rootToken))).toBe("UNAUTHENTICATED");
    // The recovery session itself stands.
    ok(await actionsOf(stack, done.session.token).deactivate(device.serialNumber, "root"));
    const event = await stack.db.auditEvent.findFirst({
      where: { accountId: account.accountId, action: "CompleteRootRecovery", outcome: "success" },
    });
    expect(event?.detail).toEqual({ sessionsSignedOut: 1 });
    const [notice] = await outboxOf(stack, account.accountId, "root-recovery-completed");
    expect(notice?.body).toContain("every other session of the root user was signed out");
  });

  it("deletes root's recovery codes, lost with the device as likely as not", async () => {
    const { account, started, emailCode, phoneCode } = await rootWithLostDevice();
    const root = await stack.db.user.findFirstOrThrow({
      where: { accountId: account.accountId, isRoot: true },
    });
    await stack.db.recoveryCode.create({
      data: { userId: root.id, codeHash: "stands-for-a-code" },
    });
    ok(await complete(started.recoveryToken, emailCode, phoneCode));
    expect(await stack.db.recoveryCode.count({ where: { userId: root.id } })).toBe(0);
  });

  it("stores only hashes of the token and the codes", async () => {
    const { account, started, emailCode, phoneCode } = await rootWithLostDevice();
    const [row] = await stack.db.rootRecovery.findMany({ where: { accountId: account.accountId } });
    expect(row!.tokenHash).toBe(hashToken(started.recoveryToken));
    const text = JSON.stringify(row);
    for (const secret of [started.recoveryToken, emailCode, phoneCode])
      expect(text).not.toContain(secret);
  });
});

describe("a recovery session", () => {
  it("may do nothing but replace root's device: everything else is FORBIDDEN", async () => {
    const { account, device, started, emailCode, phoneCode } = await rootWithLostDevice();
    await createTestUser(stack, account.rootToken, "alice");
    const aliceDevice = await enrolForSignIn(stack, account.rootToken, "alice", "alice-phone");
    const spare = await spareDevice(account);
    const token = ok(await complete(started.recoveryToken, emailCode, phoneCode))
      .completeRootRecovery.session.token;
    const as = actionsOf(stack, token);
    const dummy = { authenticationCode1: "123456", authenticationCode2: "654321" };
    const aliceId = (
      await stack.db.user.findFirstOrThrow({
        where: { accountId: account.accountId, userName: "alice" },
      })
    ).id;
    const refused: [string, Promise<GraphQLResponse<unknown>>][] = [
      ["user", as.user()],
      ["user(root)", as.user("root")],
      ["users", as.users()],
      ["virtualMfaDevices", as.listDevices()],
      ["mfaDevices", as.listUserDevices()],
      ["virtualMfaDevice", as.device(device.serialNumber)],
      ["resync", as.resync("root", device.serialNumber, dummy)],
      ["rotate", as.rotate("root", device.serialNumber, spare, dummy)],
      ["tag", as.tag(device.serialNumber)],
      ["untag", as.untag(device.serialNumber)],
      ["delete", as.deleteDevice(spare)],
      ["enable for alice", as.enable("alice", spare, dummy)],
      ["deactivate alice's", as.deactivate(aliceDevice.serialNumber, "alice")],
      ["createDevice of another name", as.createDevice("not-for-root")],
      ["createDevice of the name in another case", as.createDevice("ROOT-Account-MFA-Device")],
      ["createUser", as.createUser("mallory")],
      ["deleteUser", as.deleteUser("alice")],
      ["updateAccountSettings", as.updateSettings()],
      ["getSessionToken", as.getSessionToken(device.serialNumber, "123456")],
      ["generateRecoveryCodes", as.generateRecoveryCodes()],
      ["_entities", as.userEntity(aliceId)],
    ];
    for (const [name, call] of refused) {
      const res = await call;
      expect([name, errorCode(res)]).toEqual([name, "FORBIDDEN"]);
    }
    expect(await assignedTo(aliceDevice.serialNumber)).toBe("alice");
    expect(await assignedTo(device.serialNumber)).toBe("root");
    // What it is for still works, and so does signing out.
    ok(await as.deactivate(device.serialNumber, "root"));
    // Only the new device it creates: another one's seed may be held by someone else.
    expect(errorCode(await as.enable("root", spare, dummy))).toBe("FORBIDDEN");
    ok(await as.signOut());
    expect(errorCode(await as.createDevice("late"))).toBe("UNAUTHENTICATED");
  });
});

describe("starting a recovery", () => {
  it("refuses a wrong password with UNAUTHENTICATED and sends nothing", async () => {
    const account = await createTestAccount(stack);
    for (const res of [
      await start(account.email, "wrong password!"),
      await start("nobody@example.com"),
    ]) {
      expect(errorCode(res)).toBe("UNAUTHENTICATED");
      expect(res.errors![0]!.message).toBe("Incorrect sign-in details.");
    }
    expect(await outboxOf(stack, account.accountId)).toHaveLength(0);
    const failures = await stack.db.auditEvent.count({
      where: { accountId: account.accountId, action: "StartRootRecovery", outcome: "failure" },
    });
    expect(failures).toBe(1);
  });

  it("is not for IAM users: an IAM user's own email and password do not start one", async () => {
    const account = await createTestAccount(stack);
    const email = `alice-${account.accountId}@example.org`;
    ok(
      await stack.gql(
        `mutation($input: CreateUserInput!) { createUser(input: $input) { userName } }`,
        { input: { userName: "alice", password: PASSWORD, email } },
        account.rootToken,
      ),
    );
    const res = await start(email);
    expect(errorCode(res)).toBe("UNAUTHENTICATED");
    expect(await outboxOf(stack, account.accountId, "root-recovery-code")).toHaveLength(0);
  });

  it("waits a minute between recoveries, and a new one voids the one before", async () => {
    const { account, started } = await rootWithLostDevice();
    const soon = await start(account.email);
    expect(errorCode(soon)).toBe("RATE_LIMITED");
    expect(soon.errors![0]!.extensions!.retryAfterSeconds).toBeGreaterThan(50);
    expect(await outboxOf(stack, account.accountId, "root-recovery-code")).toHaveLength(2);
    // A minute later (moved back in the database rather than waited for):
    await stack.db.rootRecovery.updateMany({
      where: { accountId: account.accountId },
      data: { createdAt: new Date(Date.now() - 61_000) },
    });
    const old = await sentCodes(account);
    const second = ok(await start(account.email)).startRootRecovery;
    const stale = await complete(started.recoveryToken, old.emailCode, old.phoneCode);
    expect(errorCode(stale)).toBe("UNAUTHENTICATED");
    const fresh = await sentCodes(account);
    ok(await complete(second.recoveryToken, fresh.emailCode, fresh.phoneCode));
  });
});

describe("completing a recovery", () => {
  it("refuses wrong codes without saying which, and is void after five wrong answers", async () => {
    const { started, emailCode, phoneCode } = await rootWithLostDevice();
    const wrong = (code: string) => String((Number(code) + 1) % 1e8).padStart(8, "0");
    const answers = [
      [wrong(emailCode), phoneCode],
      [emailCode, wrong(phoneCode)],
      [wrong(emailCode), wrong(phoneCode)],
      [phoneCode, emailCode],
      [wrong(emailCode), phoneCode],
    ];
    let left = 4;
    for (const [e, p] of answers) {
      const res = await complete(started.recoveryToken, e!, p!);
      expect(errorCode(res)).toBe("INVALID_AUTHENTICATION_CODE");
      expect(res.errors![0]!.message).toBe("The verification codes are not valid.");
      expect(res.errors![0]!.extensions!.attemptsRemaining).toBe(left--);
    }
    const late = await complete(started.recoveryToken, emailCode, phoneCode);
    expect(errorCode(late)).toBe("UNAUTHENTICATED");
  });

  it("expires", async () => {
    const { started, emailCode, phoneCode } = await rootWithLostDevice();
    await stack.db.rootRecovery.update({
      where: { tokenHash: hashToken(started.recoveryToken) },
      data: { expiresAt: new Date(Date.now() - 1000) },
    });
    expect(errorCode(await complete(started.recoveryToken, emailCode, phoneCode))).toBe(
      "UNAUTHENTICATED",
    );
  });

  it("is single use, even when both codes are sent twice at once", async () => {
    const { account, started, emailCode, phoneCode } = await rootWithLostDevice();
    const results = await Promise.all(
      Array.from({ length: 5 }, () => complete(started.recoveryToken, emailCode, phoneCode)),
    );
    expect(results.filter((r) => r.data?.completeRootRecovery)).toHaveLength(1);
    for (const r of results.filter((r) => !r.data?.completeRootRecovery))
      expect(errorCode(r)).toBe("UNAUTHENTICATED");
    expect(
      await stack.db.session.count({ where: { accountId: account.accountId, kind: "recovery" } }),
    ).toBe(1);
  });

  it("refuses malformed codes and tokens", async () => {
    const { started, phoneCode } = await rootWithLostDevice();
    expect(errorCode(await complete(started.recoveryToken, "12345", phoneCode))).toBe(
      "BAD_USER_INPUT",
    );
    expect(errorCode(await complete("mfar_nope", "12345678", phoneCode))).toBe("UNAUTHENTICATED");
  });
});

describe("signing in after a recovery started", () => {
  it("still asks for MFA: a recovery changes nothing until it is completed", async () => {
    const { account } = await rootWithLostDevice();
    const res = ok(
      await stack.gql<{ signIn: { status: string } }>(SIGN_IN, {
        input: { email: account.email, password: PASSWORD },
      }),
    );
    expect(res.signIn.status).toBe("MFA_REQUIRED");
  });
});

async function assignedTo(serialNumber: string) {
  const row = await stack.db.virtualMfaDevice.findUniqueOrThrow({
    where: { serialNumber },
    include: { user: true },
  });
  return row.user?.userName ?? null;
}

/** An unassigned device's serial number. */
async function spareDevice(account: TestAccount): Promise<string> {
  const res = ok(await actionsOf(stack, account.rootToken).createDevice("spare")) as {
    createVirtualMfaDevice: { virtualMfaDevice: { serialNumber: string } };
  };
  return res.createVirtualMfaDevice.virtualMfaDevice.serialNumber;
}
