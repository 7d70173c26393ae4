/**
 * The access rules of DESIGN.md, each allowed action and each denied one:
 * - root and administrators manage every user's devices in their account;
 * - a user creates, enables, resyncs and lists only their own device;
 * - deactivating or rotating one's own device needs an MFA-authenticated session, and so does
 *   enabling a device beside one's own;
 * - only a root session touches the root user's device, and not a programmatic (STS) one;
 * - nobody reads or changes another account's anything;
 * - every denial is FORBIDDEN, and says nothing about whether the target exists.
 * Sessions come from the real sign-in: password, then answerMfaChallenge or getSessionToken.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, ok, type GraphQLResponse } from "../support/graphql";
import { createTestAccount, createTestUser, PASSWORD, type TestAccount } from "../support/fixtures";
import {
  actionsOf,
  enrolForSignIn,
  enrolRootDevice,
  enrolPair,
  mfaSession,
  newDevice,
  nextCode,
  pairAfterWatermark,
  passwordSession,
  type EnrolledDevice,
} from "../support/signin";
import { startStack, type Stack } from "../support/stack";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const DUMMY = { authenticationCode1: "123456", authenticationCode2: "654321" };
const FORBIDDEN_MESSAGE = "You are not allowed to perform this operation.";

function expectForbidden(res: GraphQLResponse<unknown>) {
  expect(errorCode(res)).toBe("FORBIDDEN");
  expect(res.errors![0]!.message).toBe(FORBIDDEN_MESSAGE);
  expect(res.errors![0]!.extensions!.iamCode).toBe("AccessDenied");
}

async function assignedTo(serialNumber: string) {
  const row = await stack.db.virtualMfaDevice.findUnique({
    where: { serialNumber },
    include: { user: true },
  });
  return row === null ? "(deleted)" : (row.user?.userName ?? null);
}

interface Office {
  account: TestAccount;
  who: (userName: string) => { account: string; userName: string };
}

/** An account with an administrator and two plain users, alice and bob. */
async function office(): Promise<Office> {
  const account = await createTestAccount(stack);
  await createTestUser(stack, account.rootToken, "admin", { isAdministrator: true });
  await createTestUser(stack, account.rootToken, "alice");
  await createTestUser(stack, account.rootToken, "bob");
  return { account, who: (userName) => ({ account: account.accountId, userName }) };
}

/** A device enabled for `userName` by root. */
const enrolled = (o: Office, userName: string, name = `${userName}-phone`) =>
  enrolForSignIn(stack, o.account.rootToken, userName, name);

/** A step-up session from `token` with one code of `device`. */
async function stsSession(token: string, device: EnrolledDevice): Promise<string> {
  const res = ok(
    await actionsOf(stack, token).getSessionToken(
      device.serialNumber,
      await nextCode(stack, device),
    ),
  ) as { getSessionToken: { token: string } };
  return res.getSessionToken.token;
}

describe("root and administrators", () => {
  it.each(["root", "an administrator"])(
    "%s creates, enables, lists, resyncs, tags, rotates, deactivates and deletes another user's device",
    async (actor) => {
      const o = await office();
      const token =
        actor === "root" ? o.account.rootToken : await passwordSession(stack, o.who("admin"));
      const as = actionsOf(stack, token);
      const created = ok(await as.createDevice("alice-phone")) as {
        createVirtualMfaDevice: {
          virtualMfaDevice: { serialNumber: string };
          base32StringSeed: string;
        };
      };
      const device = {
        serialNumber: created.createVirtualMfaDevice.virtualMfaDevice.serialNumber,
        seed: created.createVirtualMfaDevice.base32StringSeed,
      };
      ok(await as.enable("alice", device.serialNumber, await enrolPair(stack, device)));
      expect(await assignedTo(device.serialNumber)).toBe("alice");
      expect(ok(await as.listUserDevices("alice"))).toEqual({
        mfaDevices: { edges: [{ node: { serialNumber: device.serialNumber } }] },
      });
      expect(JSON.stringify(ok(await as.listDevices()))).toContain(device.serialNumber);
      ok(await as.device(device.serialNumber));
      ok(await as.resync("alice", device.serialNumber, await pairAfterWatermark(stack, device)));
      ok(await as.tag(device.serialNumber));
      ok(await as.untag(device.serialNumber));
      const replacement = await newDevice(stack, token, "alice-new-phone");
      ok(
        await as.rotate(
          "alice",
          device.serialNumber,
          replacement.serialNumber,
          await enrolPair(stack, replacement),
        ),
      );
      expect(await assignedTo(replacement.serialNumber)).toBe("alice");
      ok(await as.deactivate(replacement.serialNumber, "alice"));
      expect(await assignedTo(replacement.serialNumber)).toBeNull();
      ok(await as.deleteDevice(device.serialNumber));
      expect(await assignedTo(device.serialNumber)).toBe("(deleted)");
    },
  );

  it("lets an administrator manage another administrator's device", async () => {
    const o = await office();
    await createTestUser(stack, o.account.rootToken, "admin2", { isAdministrator: true });
    const device = await enrolled(o, "admin2");
    const admin = await passwordSession(stack, o.who("admin"));
    ok(await actionsOf(stack, admin).deactivate(device.serialNumber, "admin2"));
    expect(await assignedTo(device.serialNumber)).toBeNull();
  });
});

describe("a plain user", () => {
  it("creates, enables, lists and resyncs their own device", async () => {
    const o = await office();
    const alice = actionsOf(stack, await passwordSession(stack, o.who("alice")));
    const created = ok(await alice.createDevice("alice-phone")) as {
      createVirtualMfaDevice: {
        virtualMfaDevice: { serialNumber: string };
        base32StringSeed: string;
      };
    };
    const device = {
      serialNumber: created.createVirtualMfaDevice.virtualMfaDevice.serialNumber,
      seed: created.createVirtualMfaDevice.base32StringSeed,
    };
    ok(await alice.enable("alice", device.serialNumber, await enrolPair(stack, device)));
    const own = { mfaDevices: { edges: [{ node: { serialNumber: device.serialNumber } }] } };
    expect(ok(await alice.listUserDevices())).toEqual(own);
    expect(ok(await alice.listUserDevices("alice"))).toEqual(own);
    expect(ok(await alice.device(device.serialNumber))).toEqual({
      virtualMfaDevice: { serialNumber: device.serialNumber, user: { userName: "alice" } },
    });
    ok(await alice.resync("alice", device.serialNumber, await pairAfterWatermark(stack, device)));
    expect(ok(await alice.user())).toEqual({ user: { userName: "alice" } });
    expect(ok(await alice.user("alice"))).toEqual({ user: { userName: "alice" } });
  });

  it("is FORBIDDEN to touch another user's device, even from a session that passed MFA", async () => {
    const o = await office();
    const aliceDevice = await enrolled(o, "alice");
    const bobDevice = await enrolled(o, "bob");
    const spare = await newDevice(stack, o.account.rootToken, "spare");
    const alice = actionsOf(stack, await mfaSession(stack, o.who("alice"), aliceDevice));
    expectForbidden(await alice.enable("bob", spare.serialNumber, DUMMY));
    expectForbidden(await alice.enable("alice", bobDevice.serialNumber, DUMMY));
    expectForbidden(await alice.resync("bob", bobDevice.serialNumber, DUMMY));
    expectForbidden(await alice.resync("alice", bobDevice.serialNumber, DUMMY));
    expectForbidden(await alice.listUserDevices("bob"));
    expectForbidden(await alice.device(bobDevice.serialNumber));
    expectForbidden(await alice.deactivate(bobDevice.serialNumber, "bob"));
    expectForbidden(await alice.deactivate(bobDevice.serialNumber));
    expectForbidden(await alice.rotate("bob", bobDevice.serialNumber, spare.serialNumber, DUMMY));
    expectForbidden(await alice.getSessionToken(bobDevice.serialNumber, "123456"));
    expect(await assignedTo(bobDevice.serialNumber)).toBe("bob");
    expect(await assignedTo(spare.serialNumber)).toBeNull();
  });

  it("is FORBIDDEN the account-wide operations: listing all devices, deleting and tagging, and managing users", async () => {
    const o = await office();
    const aliceDevice = await enrolled(o, "alice");
    const alice = actionsOf(stack, await mfaSession(stack, o.who("alice"), aliceDevice));
    const own = await newDevice(stack, o.account.rootToken, "unassigned");
    expectForbidden(await alice.listDevices());
    expectForbidden(await alice.deleteDevice(own.serialNumber));
    expectForbidden(await alice.tag(aliceDevice.serialNumber));
    expectForbidden(await alice.untag(aliceDevice.serialNumber));
    expectForbidden(await alice.user("bob"));
    expectForbidden(await alice.users());
    expectForbidden(await alice.createUser("carol"));
    expectForbidden(await alice.deleteUser("bob"));
    expectForbidden(await alice.updateSettings());
    expect(await assignedTo(own.serialNumber)).toBeNull();
    expect(await stack.db.user.count({ where: { accountId: o.account.accountId } })).toBe(4);
  });

  it("cannot tell someone else's device or user from one that does not exist", async () => {
    const o = await office();
    const bobDevice = await enrolled(o, "bob");
    const alice = actionsOf(stack, await passwordSession(stack, o.who("alice")));
    const missing = `arn:aws:iam::${o.account.accountId}:mfa/no-such-device`;
    const pairs: [GraphQLResponse<unknown>, GraphQLResponse<unknown>][] = [
      [await alice.device(bobDevice.serialNumber), await alice.device(missing)],
      [
        await alice.enable("alice", bobDevice.serialNumber, DUMMY),
        await alice.enable("alice", missing, DUMMY),
      ],
      [
        await alice.resync("alice", bobDevice.serialNumber, DUMMY),
        await alice.resync("alice", missing, DUMMY),
      ],
      [await alice.listUserDevices("bob"), await alice.listUserDevices("nobody")],
      [await alice.user("bob"), await alice.user("nobody")],
      [
        await alice.getSessionToken(bobDevice.serialNumber, "123456"),
        await alice.getSessionToken(missing, "123456"),
      ],
    ];
    for (const [existing, absent] of pairs) {
      expectForbidden(existing);
      expect(absent.errors).toEqual(existing.errors);
    }
  });

  it("cannot reach an unassigned device another user created, so no guess of theirs spends its attempts", async () => {
    const o = await office();
    const bobToken = await passwordSession(stack, o.who("bob"));
    const fresh = await newDevice(stack, bobToken, "bob-new-phone");
    const alice = actionsOf(stack, await passwordSession(stack, o.who("alice")));
    const missing = `arn:aws:iam::${o.account.accountId}:mfa/no-such-device`;
    // Reaching the verifier, twelve wrong guesses from the office's network would lock the
    // device for its owner there for over an hour (doubling locks from the third).
    for (let i = 0; i < 12; i++) {
      const guess = await alice.enable("alice", fresh.serialNumber, DUMMY);
      expectForbidden(guess);
      expect(guess.errors).toEqual((await alice.enable("alice", missing, DUMMY)).errors);
    }
    ok(
      await actionsOf(stack, bobToken).enable(
        "bob",
        fresh.serialNumber,
        await enrolPair(stack, fresh),
      ),
    );
    expect(await assignedTo(fresh.serialNumber)).toBe("bob");
  });

  it("can enable a device an administrator provisioned, also once that administrator is gone", async () => {
    const o = await office();
    const adminToken = await passwordSession(stack, o.who("admin"));
    const provisioned = await newDevice(stack, adminToken, "for-alice");
    ok(await actionsOf(stack, o.account.rootToken).deleteUser("admin"));
    const alice = actionsOf(stack, await passwordSession(stack, o.who("alice")));
    ok(await alice.enable("alice", provisioned.serialNumber, await enrolPair(stack, provisioned)));
    expect(await assignedTo(provisioned.serialNumber)).toBe("alice");
  });
});

describe("taking one's own device away", () => {
  it("is FORBIDDEN from a password session and allowed once the session passed MFA", async () => {
    const o = await office();
    // Signed in before the device was enabled: a session that never passed MFA.
    const password = actionsOf(stack, await passwordSession(stack, o.who("alice")));
    const device = await enrolled(o, "alice");
    expectForbidden(await password.deactivate(device.serialNumber));
    const replacement = await newDevice(stack, o.account.rootToken, "alice-new");
    expectForbidden(
      await password.rotate("alice", device.serialNumber, replacement.serialNumber, DUMMY),
    );
    expect(await assignedTo(device.serialNumber)).toBe("alice");

    const mfa = actionsOf(stack, await mfaSession(stack, o.who("alice"), device));
    ok(await mfa.deactivate(device.serialNumber));
    expect(await assignedTo(device.serialNumber)).toBeNull();
  });

  it("may be done from a step-up (STS) session, which passed MFA", async () => {
    const o = await office();
    const password = await passwordSession(stack, o.who("alice"));
    const device = await enrolled(o, "alice");
    const sts = actionsOf(stack, await stsSession(password, device));
    const replacement = await newDevice(stack, o.account.rootToken, "alice-new");
    ok(
      await sts.rotate(
        "alice",
        device.serialNumber,
        replacement.serialNumber,
        await enrolPair(stack, replacement),
      ),
    );
    expect(await assignedTo(replacement.serialNumber)).toBe("alice");
  });

  it("needs MFA for administrators and root too when the device is their own", async () => {
    const o = await office();
    const adminPassword = actionsOf(stack, await passwordSession(stack, o.who("admin")));
    const adminDevice = await enrolled(o, "admin");
    expectForbidden(await adminPassword.deactivate(adminDevice.serialNumber));
    const rootDevice = await enrolRootDevice(stack, o.account.rootToken);
    expectForbidden(
      await actionsOf(stack, o.account.rootToken).deactivate(rootDevice.serialNumber),
    );
    const rootMfa = actionsOf(
      stack,
      await mfaSession(stack, { email: o.account.email }, rootDevice),
    );
    ok(await rootMfa.deactivate(rootDevice.serialNumber));
    ok(
      await actionsOf(stack, await mfaSession(stack, o.who("admin"), adminDevice)).deactivate(
        adminDevice.serialNumber,
      ),
    );
  });
});

describe("adding a device beside one's own", () => {
  it("is FORBIDDEN from a password session and allowed once the session passed MFA", async () => {
    const o = await office();
    ok(await actionsOf(stack, o.account.rootToken).updateSettings()); // two devices per user
    // Signed in with the password before the first device was enabled, as a thief might be.
    const thief = await passwordSession(stack, o.who("alice"));
    const password = actionsOf(stack, thief);
    const first = await enrolled(o, "alice");
    const second = await newDevice(stack, thief, "thief-phone");
    expectForbidden(await password.enable("alice", second.serialNumber, DUMMY));
    const codes = await enrolPair(stack, second);
    expectForbidden(await password.enable("alice", second.serialNumber, codes));
    expect(await assignedTo(second.serialNumber)).toBeNull();

    const mfa = actionsOf(stack, await mfaSession(stack, o.who("alice"), first));
    ok(await mfa.enable("alice", second.serialNumber, await enrolPair(stack, second)));
    expect(await assignedTo(second.serialNumber)).toBe("alice");
  });

  it("stays allowed to an administrator for another user, from a password session", async () => {
    const o = await office();
    ok(await actionsOf(stack, o.account.rootToken).updateSettings());
    await enrolled(o, "alice");
    const admin = actionsOf(stack, await passwordSession(stack, o.who("admin")));
    const second = await newDevice(stack, o.account.rootToken, "alice-second");
    ok(await admin.enable("alice", second.serialNumber, await enrolPair(stack, second)));
    expect(await assignedTo(second.serialNumber)).toBe("alice");
  });
});

describe("the root user's device", () => {
  it("is root's alone: an administrator is FORBIDDEN every change, even after MFA", async () => {
    const o = await office();
    const adminDevice = await enrolled(o, "admin");
    const rootDevice = await enrolRootDevice(stack, o.account.rootToken);
    const admin = actionsOf(stack, await mfaSession(stack, o.who("admin"), adminDevice));
    const spare = await newDevice(stack, o.account.rootToken, "spare");
    expectForbidden(await admin.createDevice("root-account-mfa-device"));
    expectForbidden(await admin.enable("root", spare.serialNumber, DUMMY));
    expectForbidden(await admin.resync("root", rootDevice.serialNumber, DUMMY));
    expectForbidden(await admin.deactivate(rootDevice.serialNumber, "root"));
    expectForbidden(await admin.rotate("root", rootDevice.serialNumber, spare.serialNumber, DUMMY));
    expectForbidden(await admin.tag(rootDevice.serialNumber));
    expectForbidden(await admin.listUserDevices("root"));
    expectForbidden(await admin.getSessionToken(rootDevice.serialNumber, "123456"));
    expect(await assignedTo(rootDevice.serialNumber)).toBe("root");
    expect(await assignedTo(spare.serialNumber)).toBeNull();
  });

  it("is created, enabled, resynced, tagged and deleted by root", async () => {
    const o = await office();
    const root = actionsOf(stack, o.account.rootToken);
    const created = ok(await root.createDevice("root-account-mfa-device")) as {
      createVirtualMfaDevice: {
        virtualMfaDevice: { serialNumber: string };
        base32StringSeed: string;
      };
    };
    const device = {
      serialNumber: created.createVirtualMfaDevice.virtualMfaDevice.serialNumber,
      seed: created.createVirtualMfaDevice.base32StringSeed,
    };
    ok(await root.enable("root", device.serialNumber, await enrolPair(stack, device)));
    ok(await root.resync("root", device.serialNumber, await pairAfterWatermark(stack, device)));
    ok(await root.tag(device.serialNumber));
    const mfa = actionsOf(stack, await mfaSession(stack, { email: o.account.email }, device));
    ok(await mfa.deactivate(device.serialNumber));
    ok(await root.deleteDevice(device.serialNumber));
    expect(await assignedTo(device.serialNumber)).toBe("(deleted)");
  });

  it("is FORBIDDEN to root's programmatic (STS) session, which still manages other users' devices", async () => {
    const o = await office();
    const rootDevice = await enrolRootDevice(stack, o.account.rootToken);
    const aliceDevice = await enrolled(o, "alice");
    const rootMfa = await mfaSession(stack, { email: o.account.email }, rootDevice);
    const stsToken = await stsSession(rootMfa, rootDevice);
    const sts = actionsOf(stack, stsToken);
    const spare = await newDevice(stack, o.account.rootToken, "spare");
    expectForbidden(await sts.deactivate(rootDevice.serialNumber));
    expectForbidden(await sts.resync("root", rootDevice.serialNumber, DUMMY));
    expectForbidden(await sts.enable("root", spare.serialNumber, DUMMY));
    expectForbidden(await sts.createDevice("root-account-mfa-device"));
    expectForbidden(await sts.tag(rootDevice.serialNumber));
    // Root's recovery codes stand in for root's device, so they are refused too.
    expectForbidden(await sts.generateRecoveryCodes());
    // And so is root's password: with it, a leaked token could sign the owner out for good.
    const change = await stack.gql(
      `mutation($input: ChangePasswordInput!) { changePassword(input: $input) { sessionsSignedOut } }`,
      { input: { currentPassword: PASSWORD, newPassword: "a brand new passphrase 42" } },
      stsToken,
    );
    expectForbidden(change);
    ok(await stack.gql("{ user { userName } }", {}, rootMfa));
    expect(await assignedTo(rootDevice.serialNumber)).toBe("root");
    ok(await sts.deactivate(aliceDevice.serialNumber, "alice"));
    expect(await assignedTo(aliceDevice.serialNumber)).toBeNull();
  });
});

describe("another account", () => {
  it("is FORBIDDEN everything on this account's devices, to its root and its administrators", async () => {
    const o = await office();
    const aliceDevice = await enrolled(o, "alice");
    const spare = await newDevice(stack, o.account.rootToken, "spare");
    const other = await createTestAccount(stack);
    await createTestUser(stack, other.rootToken, "admin", { isAdministrator: true });
    const otherAdminDevice = await enrolForSignIn(stack, other.rootToken, "admin", "admin-phone");
    const otherAdmin = await mfaSession(
      stack,
      { account: other.accountId, userName: "admin" },
      otherAdminDevice,
    );
    const missing = `arn:aws:iam::${o.account.accountId}:mfa/no-such-device`;
    for (const token of [other.rootToken, otherAdmin]) {
      const them = actionsOf(stack, token);
      for (const serial of [aliceDevice.serialNumber, missing]) {
        expectForbidden(await them.device(serial));
        expectForbidden(await them.resync("admin", serial, DUMMY));
        expectForbidden(await them.deactivate(serial));
        expectForbidden(await them.deleteDevice(serial));
        expectForbidden(await them.tag(serial));
        expectForbidden(await them.getSessionToken(serial, "123456"));
      }
      expectForbidden(await them.enable("admin", spare.serialNumber, DUMMY));
      expectForbidden(
        await them.rotate("admin", aliceDevice.serialNumber, spare.serialNumber, DUMMY),
      );
      // Names are looked up in the caller's own account: ours are as unknown there as any.
      const byName = await them.listUserDevices("alice");
      expect(errorCode(byName)).toBe("NOT_FOUND");
      expect(byName.errors![0]!.message).toBe("The user with name alice cannot be found.");
      // References to another account's users resolve to null.
      const aliceId = (
        await stack.db.user.findFirstOrThrow({
          where: { accountId: o.account.accountId, userName: "alice" },
        })
      ).id;
      expect(ok(await them.userEntity(aliceId))).toEqual({ _entities: [null] });
      expect(JSON.stringify(ok(await them.listDevices()))).not.toContain(o.account.accountId);
    }
    expect(await assignedTo(aliceDevice.serialNumber)).toBe("alice");
    expect(await assignedTo(spare.serialNumber)).toBeNull();
  });
});

describe("without a session", () => {
  it("answers UNAUTHENTICATED to every protected operation, and to a session that ended", async () => {
    const o = await office();
    const device = await enrolled(o, "alice");
    const nobody = actionsOf(stack);
    const calls = [
      nobody.createDevice("x"),
      nobody.enable("alice", device.serialNumber, DUMMY),
      nobody.resync("alice", device.serialNumber, DUMMY),
      nobody.deactivate(device.serialNumber, "alice"),
      nobody.listDevices(),
      nobody.listUserDevices(),
      nobody.device(device.serialNumber),
      nobody.user(),
      nobody.getSessionToken(device.serialNumber, "123456"),
      nobody.generateRecoveryCodes(),
      nobody.signOut(),
    ];
    for (const res of await Promise.all(calls)) expect(errorCode(res)).toBe("UNAUTHENTICATED");

    const token = await mfaSession(stack, o.who("alice"), device);
    ok(await actionsOf(stack, token).signOut());
    expect(errorCode(await actionsOf(stack, token).user())).toBe("UNAUTHENTICATED");
  });
});
