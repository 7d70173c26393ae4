/** Reading devices: ListVirtualMFADevices, ListMFADevices, one device, and who may see what. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, ok } from "../support/graphql";
import { createTestAccount, createTestUser, signInUser } from "../support/fixtures";
import { startStack, type Stack } from "../support/stack";
import { createDevice, enrolDevice } from "../support/totp";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const LIST = `query($status: AssignmentStatus, $first: Int, $after: String) {
  virtualMfaDevices(assignmentStatus: $status, first: $first, after: $after) {
    edges { cursor node { serialNumber enableDate user { userName arn path userId createDate } } }
    pageInfo { hasNextPage endCursor }
  }
}`;
const MFA_DEVICES = `query($userName: String, $first: Int, $after: String) {
  mfaDevices(userName: $userName, first: $first, after: $after) {
    edges { node { serialNumber userName enableDate } }
    pageInfo { hasNextPage endCursor }
  }
}`;
const DEVICE = `query($serialNumber: String!) { virtualMfaDevice(serialNumber: $serialNumber) { serialNumber user { userName } } }`;

interface ListData {
  virtualMfaDevices: {
    edges: {
      cursor: string;
      node: {
        serialNumber: string;
        enableDate: string | null;
        user: Record<string, string> | null;
      };
    }[];
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
  };
}

const serials = (data: ListData) => data.virtualMfaDevices.edges.map((e) => e.node.serialNumber);

describe("listing virtual devices", () => {
  it("filters by assignment status and shows user and enable date only for assigned devices", async () => {
    const account = await createTestAccount(stack);
    const alice = await createTestUser(stack, account.rootToken, "alice", { path: "/staff/" });
    const assigned = await enrolDevice(stack, account.rootToken, "alice", "b-assigned");
    const spare = await createDevice(stack, account.rootToken, "a-spare");

    const any = ok(await stack.gql<ListData>(LIST, {}, account.rootToken));
    expect(serials(any)).toEqual([spare.serialNumber, assigned.serialNumber]);
    const unassigned = ok(
      await stack.gql<ListData>(LIST, { status: "UNASSIGNED" }, account.rootToken),
    );
    expect(unassigned.virtualMfaDevices.edges.map((e) => e.node)).toEqual([
      { serialNumber: spare.serialNumber, enableDate: null, user: null },
    ]);
    const onlyAssigned = ok(
      await stack.gql<ListData>(LIST, { status: "ASSIGNED" }, account.rootToken),
    );
    expect(serials(onlyAssigned)).toEqual([assigned.serialNumber]);
    const node = onlyAssigned.virtualMfaDevices.edges[0]!.node;
    expect(node.enableDate).not.toBeNull();
    expect(node.user).toMatchObject({
      userName: "alice",
      arn: alice.arn,
      path: "/staff/",
      userId: alice.userId,
    });
    expect(onlyAssigned.virtualMfaDevices.pageInfo).toEqual({
      hasNextPage: false,
      endCursor: expect.any(String),
    });
  });

  it("pages through every device exactly once, in serial number order", async () => {
    const account = await createTestAccount(stack);
    const names = ["d5", "d1", "d4", "d3", "d2"];
    for (const name of names) await createDevice(stack, account.rootToken, name);
    await createDevice(stack, account.rootToken, "d0", { path: "/nested/" });
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const page: ListData = ok(
        await stack.gql<ListData>(LIST, { first: 2, after }, account.rootToken),
      );
      seen.push(...serials(page));
      after = page.virtualMfaDevices.pageInfo.hasNextPage
        ? page.virtualMfaDevices.pageInfo.endCursor
        : null;
      pages++;
    } while (after);
    const prefix = `arn:aws:iam::${account.accountId}:mfa/`;
    expect(seen).toEqual([
      ...["d1", "d2", "d3", "d4", "d5"].map((n) => prefix + n),
      `${prefix}nested/d0`,
    ]);
    expect(pages).toBe(3);
  });

  it("says there is more with first=1, and the cursor it gives is accepted", async () => {
    const account = await createTestAccount(stack);
    await createDevice(stack, account.rootToken, "one");
    await createDevice(stack, account.rootToken, "two");
    const first = ok(await stack.gql<ListData>(LIST, { first: 1 }, account.rootToken));
    expect(first.virtualMfaDevices.edges).toHaveLength(1);
    expect(first.virtualMfaDevices.pageInfo.hasNextPage).toBe(true);
    const second = ok(
      await stack.gql<ListData>(
        LIST,
        { first: 1, after: first.virtualMfaDevices.pageInfo.endCursor },
        account.rootToken,
      ),
    );
    expect(serials(second)).toEqual([`arn:aws:iam::${account.accountId}:mfa/two`]);
    expect(second.virtualMfaDevices.pageInfo.hasNextPage).toBe(false);
  });

  it("refuses a garbled cursor, or one from another list, with 'Invalid Marker.'", async () => {
    const account = await createTestAccount(stack);
    await createDevice(stack, account.rootToken, "x1");
    await createDevice(stack, account.rootToken, "x2");
    const page = ok(await stack.gql<ListData>(LIST, { first: 1 }, account.rootToken));
    for (const variables of [
      { after: "invalid-marker-value" },
      { after: "" },
      { after: page.virtualMfaDevices.pageInfo.endCursor, status: "UNASSIGNED" },
    ]) {
      const res = await stack.gql(LIST, variables, account.rootToken);
      expect(errorCode(res)).toBe("BAD_USER_INPUT");
      expect(res.errors![0]!.message).toBe("Invalid Marker.");
    }
  });

  it.each([0, 1001])("refuses first=%i", async (first) => {
    const account = await createTestAccount(stack);
    expect(errorCode(await stack.gql(LIST, { first }, account.rootToken))).toBe("BAD_USER_INPUT");
  });

  it("is for root and administrators", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "admin", { isAdministrator: true });
    await createTestUser(stack, account.rootToken, "plain");
    await createDevice(stack, account.rootToken, "listed");
    const admin = await signInUser(stack, account.accountId, "admin");
    const plain = await signInUser(stack, account.accountId, "plain");
    expect(serials(ok(await stack.gql<ListData>(LIST, {}, admin.session!.token)))).toHaveLength(1);
    expect(errorCode(await stack.gql(LIST, {}, plain.session!.token))).toBe("FORBIDDEN");
  });
});

describe("listing a user's devices", () => {
  type MfaData = { mfaDevices: { edges: { node: { serialNumber: string; userName: string } }[] } };

  it("is empty before enabling and after deactivating", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "bea");
    const list = () => stack.gql<MfaData>(MFA_DEVICES, { userName: "bea" }, account.rootToken);
    expect(ok(await list()).mfaDevices.edges).toEqual([]);
    const device = await enrolDevice(stack, account.rootToken, "bea", "bea-phone");
    expect(ok(await list()).mfaDevices.edges.map((e) => e.node.serialNumber)).toEqual([
      device.serialNumber,
    ]);
    ok(
      await stack.gql(
        `mutation($input: DeactivateMfaDeviceInput!) { deactivateMfaDevice(input: $input) { serialNumber } }`,
        { input: { userName: "bea", serialNumber: device.serialNumber } },
        account.rootToken,
      ),
    );
    expect(ok(await list()).mfaDevices.edges).toEqual([]);
  });

  it("refuses a garbled or empty cursor with 'Invalid Marker.'", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "ed");
    for (const after of ["invalid-marker-value", ""]) {
      const res = await stack.gql(MFA_DEVICES, { userName: "ed", after }, account.rootToken);
      expect(errorCode(res)).toBe("BAD_USER_INPUT");
      expect(res.errors![0]!.message).toBe("Invalid Marker.");
    }
  });

  it("lists the caller's own devices when no name is given, and refuses another user's to a plain user", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "cy");
    await createTestUser(stack, account.rootToken, "di");
    const cy = await signInUser(stack, account.accountId, "cy");
    const device = await enrolDevice(stack, cy.session!.token, "cy", "cy-phone");
    const own = ok(await stack.gql<MfaData>(MFA_DEVICES, {}, cy.session!.token));
    expect(own.mfaDevices.edges.map((e) => e.node)).toEqual([
      { serialNumber: device.serialNumber, userName: "cy", enableDate: expect.any(String) },
    ]);
    expect(errorCode(await stack.gql(MFA_DEVICES, { userName: "di" }, cy.session!.token))).toBe(
      "FORBIDDEN",
    );
    expect(errorCode(await stack.gql(MFA_DEVICES, { userName: "nobody" }, cy.session!.token))).toBe(
      "FORBIDDEN",
    );
    expect(errorCode(await stack.gql(MFA_DEVICES, { userName: "nobody" }, account.rootToken))).toBe(
      "NOT_FOUND",
    );
  });
});

describe("reading one device", () => {
  it("shows a user their own device and nothing else, without saying whether it exists", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "ed");
    const ed = await signInUser(stack, account.accountId, "ed");
    const own = await enrolDevice(stack, ed.session!.token, "ed", "ed-phone");
    const other = await createDevice(stack, account.rootToken, "someone-elses");
    expect(
      ok(await stack.gql(DEVICE, { serialNumber: own.serialNumber }, ed.session!.token)),
    ).toEqual({
      virtualMfaDevice: { serialNumber: own.serialNumber, user: { userName: "ed" } },
    });
    const existing = await stack.gql(
      DEVICE,
      { serialNumber: other.serialNumber },
      ed.session!.token,
    );
    const missing = await stack.gql(
      DEVICE,
      { serialNumber: `arn:aws:iam::${account.accountId}:mfa/missing` },
      ed.session!.token,
    );
    expect(errorCode(existing)).toBe("FORBIDDEN");
    expect(errorCode(missing)).toBe("FORBIDDEN");
    expect(existing.errors![0]!.message).toBe(missing.errors![0]!.message);
  });

  it("answers NOT_FOUND for a serial that is not a virtual device ARN", async () => {
    const account = await createTestAccount(stack);
    const res = await stack.gql(DEVICE, { serialNumber: "ABCD12345678" }, account.rootToken);
    expect(errorCode(res)).toBe("NOT_FOUND");
    expect(res.errors![0]!.message).toBe(
      "MFA Device with serial number ABCD12345678 does not exist.",
    );
  });
});

describe("other accounts", () => {
  it("never shows or touches another account's devices, nor says whether they exist", async () => {
    const theirs = await createTestAccount(stack);
    const mine = await createTestAccount(stack);
    const device = await createDevice(stack, theirs.rootToken, "their-device");
    const missing = `arn:aws:iam::${theirs.accountId}:mfa/no-such-device`;
    await createTestUser(stack, mine.rootToken, "me");

    const attempts = (serialNumber: string) => [
      stack.gql(DEVICE, { serialNumber }, mine.rootToken),
      stack.gql(
        `mutation($input: DeleteVirtualMfaDeviceInput!) { deleteVirtualMfaDevice(input: $input) { deleted } }`,
        { input: { serialNumber } },
        mine.rootToken,
      ),
      stack.gql(
        `mutation($input: TagMfaDeviceInput!) { tagMfaDevice(input: $input) { serialNumber } }`,
        { input: { serialNumber, tags: [{ key: "k", value: "v" }] } },
        mine.rootToken,
      ),
      stack.gql(
        `mutation($input: EnableMfaDeviceInput!) { enableMfaDevice(input: $input) { serialNumber } }`,
        {
          input: {
            userName: "me",
            serialNumber,
            authenticationCode1: "123456",
            authenticationCode2: "234567",
          },
        },
        mine.rootToken,
      ),
    ];
    const forExisting = await Promise.all(attempts(device.serialNumber));
    const forMissing = await Promise.all(attempts(missing));
    for (const res of [...forExisting, ...forMissing]) {
      expect(errorCode(res)).toBe("FORBIDDEN");
      expect(res.errors![0]!.message).toBe(forExisting[0]!.errors![0]!.message);
    }
    expect(serials(ok(await stack.gql<ListData>(LIST, {}, mine.rootToken)))).toEqual([]);
    const row = await stack.db.virtualMfaDevice.findUniqueOrThrow({
      where: { serialNumber: device.serialNumber },
    });
    expect(row.tags).toEqual([]);
  });
});
