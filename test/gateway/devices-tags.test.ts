/** TagMFADevice / UntagMFADevice: at most 50 tags, keys unique without regard to case, in key order. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, ok } from "../support/graphql";
import { createTestAccount, createTestUser, signInUser } from "../support/fixtures";
import { startStack, type Stack } from "../support/stack";
import { createDevice } from "../support/totp";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

type Tag = { key: string; value: string };
const TAG = `mutation($input: TagMfaDeviceInput!) { tagMfaDevice(input: $input) { tags { key value } } }`;
const UNTAG = `mutation($input: UntagMfaDeviceInput!) { untagMfaDevice(input: $input) { tags { key value } } }`;
const TAGS = `query($s: String!) { virtualMfaDevice(serialNumber: $s) { tags { key value } } }`;

async function tagsOf(token: string, serialNumber: string): Promise<Tag[]> {
  return ok(
    await stack.gql<{ virtualMfaDevice: { tags: Tag[] } }>(TAGS, { s: serialNumber }, token),
  ).virtualMfaDevice.tags;
}

const tag = (token: string, serialNumber: string, tags: Tag[]) =>
  stack.gql(TAG, { input: { serialNumber, tags } }, token);

describe("tagging a device", () => {
  it("lists tags given at creation in key order", async () => {
    const account = await createTestAccount(stack);
    const device = await createDevice(stack, account.rootToken, "tagged", {
      tags: [
        { key: "team", value: "blue" },
        { key: "Cost-Centre", value: "42" },
        { key: "env", value: "" },
      ],
    });
    expect(await tagsOf(account.rootToken, device.serialNumber)).toEqual([
      { key: "Cost-Centre", value: "42" },
      { key: "env", value: "" },
      { key: "team", value: "blue" },
    ]);
  });

  it("adds tags and overwrites an existing key given in another case", async () => {
    const account = await createTestAccount(stack);
    const device = await createDevice(stack, account.rootToken, "dev", {
      tags: [{ key: "Owner", value: "alice" }],
    });
    const res = ok(
      await stack.gql<{ tagMfaDevice: { tags: Tag[] } }>(
        TAG,
        {
          input: {
            serialNumber: device.serialNumber,
            tags: [
              { key: "OWNER", value: "bob" },
              { key: "a", value: "1" },
            ],
          },
        },
        account.rootToken,
      ),
    );
    expect(res.tagMfaDevice.tags).toEqual([
      { key: "a", value: "1" },
      { key: "OWNER", value: "bob" },
    ]);
    expect(await tagsOf(account.rootToken, device.serialNumber)).toEqual(res.tagMfaDevice.tags);
  });

  it("refuses to go over 50 tags with LIMIT_EXCEEDED and changes nothing", async () => {
    const account = await createTestAccount(stack);
    const initial = Array.from({ length: 45 }, (_, i) => ({
      key: `k${String(i).padStart(2, "0")}`,
      value: "v",
    }));
    const device = await createDevice(stack, account.rootToken, "full", { tags: initial });
    const more = Array.from({ length: 6 }, (_, i) => ({ key: `new${i}`, value: "v" }));
    const res = await tag(account.rootToken, device.serialNumber, more);
    expect(errorCode(res)).toBe("LIMIT_EXCEEDED");
    expect(await tagsOf(account.rootToken, device.serialNumber)).toHaveLength(45);
    // Overwriting existing keys does not count against the limit.
    ok(
      await tag(account.rootToken, device.serialNumber, [
        ...initial.slice(0, 10),
        ...more.slice(0, 5),
      ]),
    );
    expect(await tagsOf(account.rootToken, device.serialNumber)).toHaveLength(50);
  });

  it.each([
    [
      "an invalid key",
      [
        { key: "fine", value: "v" },
        { key: "no,commas", value: "v" },
      ],
      "regular expression pattern",
    ],
    [
      "a value of 257 characters",
      [{ key: "long", value: "x".repeat(257) }],
      "less than or equal to 256",
    ],
    [
      "the same key twice in two cases",
      [
        { key: "dup", value: "1" },
        { key: "DUP", value: "2" },
      ],
      "case insensitive",
    ],
  ])("refuses %s with BAD_USER_INPUT and changes nothing", async (_label, tags, message) => {
    const account = await createTestAccount(stack);
    const device = await createDevice(stack, account.rootToken, "dev", {
      tags: [{ key: "keep", value: "me" }],
    });
    const res = await tag(account.rootToken, device.serialNumber, tags);
    expect(errorCode(res)).toBe("BAD_USER_INPUT");
    expect(res.errors![0]!.message).toContain(message);
    expect(await tagsOf(account.rootToken, device.serialNumber)).toEqual([
      { key: "keep", value: "me" },
    ]);
  });

  it("keeps every key when two tag requests race", async () => {
    const account = await createTestAccount(stack);
    const device = await createDevice(stack, account.rootToken, "raced");
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        tag(account.rootToken, device.serialNumber, [{ key: `k${i}`, value: "v" }]),
      ),
    );
    expect((await tagsOf(account.rootToken, device.serialNumber)).map((t) => t.key)).toEqual([
      "k0",
      "k1",
      "k2",
      "k3",
      "k4",
      "k5",
    ]);
  });

  it("is for root and administrators, and NOT_FOUND for an unknown serial", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "plain");
    const plain = await signInUser(stack, account.accountId, "plain");
    const device = await createDevice(stack, account.rootToken, "dev");
    expect(
      errorCode(await tag(plain.session!.token, device.serialNumber, [{ key: "k", value: "v" }])),
    ).toBe("FORBIDDEN");
    const missing = await tag(account.rootToken, `arn:aws:iam::${account.accountId}:mfa/missing`, [
      { key: "k", value: "v" },
    ]);
    expect(errorCode(missing)).toBe("NOT_FOUND");
    expect(await tagsOf(account.rootToken, device.serialNumber)).toEqual([]);
  });

  it("records each change in the audit trail without the tag values", async () => {
    const account = await createTestAccount(stack);
    const device = await createDevice(stack, account.rootToken, "audited");
    ok(
      await tag(account.rootToken, device.serialNumber, [
        { key: "secretish", value: "value-not-for-audit" },
      ]),
    );
    const event = await stack.db.auditEvent.findFirstOrThrow({
      where: { accountId: account.accountId, action: "TagMFADevice" },
    });
    expect(event.detail).toEqual({ serialNumber: device.serialNumber, tagCount: 1 });
  });
});

describe("untagging a device", () => {
  it("removes keys without regard to case and ignores keys that are not there", async () => {
    const account = await createTestAccount(stack);
    const device = await createDevice(stack, account.rootToken, "dev", {
      tags: [
        { key: "Team", value: "blue" },
        { key: "env", value: "prod" },
        { key: "keep", value: "yes" },
      ],
    });
    const res = ok(
      await stack.gql<{ untagMfaDevice: { tags: Tag[] } }>(
        UNTAG,
        { input: { serialNumber: device.serialNumber, tagKeys: ["team", "ENV", "never-there"] } },
        account.rootToken,
      ),
    );
    expect(res.untagMfaDevice.tags).toEqual([{ key: "keep", value: "yes" }]);
    expect(await tagsOf(account.rootToken, device.serialNumber)).toEqual([
      { key: "keep", value: "yes" },
    ]);
  });

  it("refuses more than 50 keys with BAD_USER_INPUT", async () => {
    const account = await createTestAccount(stack);
    const device = await createDevice(stack, account.rootToken, "dev", {
      tags: [{ key: "k1", value: "v" }],
    });
    const tagKeys = Array.from({ length: 51 }, (_, i) => `k${i}`);
    const res = await stack.gql(
      UNTAG,
      { input: { serialNumber: device.serialNumber, tagKeys } },
      account.rootToken,
    );
    expect(errorCode(res)).toBe("BAD_USER_INPUT");
    expect(await tagsOf(account.rootToken, device.serialNumber)).toEqual([
      { key: "k1", value: "v" },
    ]);
  });
});
