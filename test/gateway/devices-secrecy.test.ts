/**
 * A device's secret is shown once, in the response that creates it, and nowhere else: not in
 * a later response, not in a log line, not in any database column, not in Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Prisma } from "../../generated/prisma/client";
import { ok, type GraphQLResponse } from "../support/graphql";
import { createTestAccount, createTestUser, signInUser } from "../support/fixtures";
import { startStack, type Stack } from "../support/stack";
import { awayFromStepEdge, base32Decode, codePair, CREATE_DEVICE } from "../support/totp";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

/** The seed as base32, and its raw bytes as hex and base64, however something might store it. */
function seedForms(base32: string): string[] {
  const raw = base32Decode(base32);
  return [
    base32,
    base32.toLowerCase(),
    raw.toString("hex"),
    raw.toString("base64"),
    raw.toString("base64url"),
  ];
}

/**
 * Every row of every table that belongs to the account, as JSON text: rows with its account
 * id, rows of its users, and tables that belong to no account (such as migrations) whole.
 */
async function dumpAccount(accountId: string): Promise<string> {
  const columns = await stack.db.$queryRaw<{ table_name: string; column_name: string }[]>`
    SELECT c.table_name, c.column_name FROM information_schema.columns c
    JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
    WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'`;
  const tables = new Map<string, Set<string>>();
  for (const { table_name, column_name } of columns) {
    tables.set(table_name, (tables.get(table_name) ?? new Set()).add(column_name));
  }
  const dumps: string[] = [];
  for (const [table, cols] of tables) {
    const name = Prisma.raw(`"${table.replace(/"/g, '""')}"`);
    const where =
      table === "Account"
        ? Prisma.sql`WHERE t."id" = ${accountId}`
        : cols.has("accountId")
          ? Prisma.sql`WHERE t."accountId" = ${accountId}`
          : cols.has("userId")
            ? Prisma.sql`WHERE t."userId" IN (SELECT "id" FROM "User" WHERE "accountId" = ${accountId})`
            : Prisma.empty;
    const rows = await stack.db.$queryRaw<{ dump: string | null }[]>`
      SELECT json_agg(t)::text AS dump FROM ${name} t ${where}`;
    dumps.push(`${table}: ${rows[0]?.dump ?? "[]"}`);
  }
  return dumps.join("\n");
}

/** Every string value under this stack's Redis prefix. */
async function dumpRedis(): Promise<string> {
  const redis = stack.redis as unknown as {
    keys(pattern: string): Promise<string[]>;
    type(key: string): Promise<string>;
    get(key: string): Promise<string | null>;
    hGetAll(key: string): Promise<Record<string, string>>;
  };
  const values: string[] = [];
  for (const key of await redis.keys(`${stack.prefix}:*`)) {
    const type = await redis.type(key);
    if (type === "string") values.push(`${key}=${await redis.get(key)}`);
    else if (type === "hash") values.push(`${key}=${JSON.stringify(await redis.hGetAll(key))}`);
    else values.push(key);
  }
  return values.join("\n");
}

describe("the seed", () => {
  it("appears in no later response, log line, database column or Redis value", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "alice");
    const alice = (await signInUser(stack, account.accountId, "alice")).session!.token;
    const created = ok(
      await stack.gql<{
        createVirtualMfaDevice: {
          virtualMfaDevice: { serialNumber: string };
          base32StringSeed: string;
        };
      }>(CREATE_DEVICE, { input: { virtualMfaDeviceName: "secret-keeper" } }, alice),
    ).createVirtualMfaDevice;
    const seed = created.base32StringSeed;
    const serialNumber = created.virtualMfaDevice.serialNumber;
    const { sealedSeed } = await stack.db.virtualMfaDevice.findUniqueOrThrow({
      where: { serialNumber },
    });

    // Everything a client can do with the device afterwards, failures included.
    const later: GraphQLResponse<unknown>[] = [];
    const call = async (
      query: string,
      variables: Record<string, unknown>,
      token = account.rootToken,
    ) => {
      const res = await stack.gql(query, variables, token);
      later.push(res);
      return res;
    };
    const step = await awayFromStepEdge(stack);
    await call(
      `mutation($input: EnableMfaDeviceInput!) { enableMfaDevice(input: $input) { serialNumber } }`,
      {
        input: {
          userName: "alice",
          serialNumber,
          authenticationCode1: "000000",
          authenticationCode2: "111111",
        },
      },
      alice,
    );
    ok(
      await call(
        `mutation($input: EnableMfaDeviceInput!) { enableMfaDevice(input: $input) { serialNumber } }`,
        { input: { userName: "alice", serialNumber, ...codePair(seed, step - 1) } },
        alice,
      ),
    );
    ok(
      await call(
        `mutation($input: ResyncMfaDeviceInput!) { resyncMfaDevice(input: $input) { serialNumber } }`,
        { input: { userName: "alice", serialNumber, ...codePair(seed, step + 1) } },
        alice,
      ),
    );
    const everyField = `serialNumber virtualMfaDeviceName path enableDate createDate tags { key value }
      user { userId userName arn path createDate isRoot isAdministrator }`;
    ok(
      await call(`query($s: String!) { virtualMfaDevice(serialNumber: $s) { ${everyField} } }`, {
        s: serialNumber,
      }),
    );
    ok(
      await call(
        `{ virtualMfaDevices { edges { cursor node { ${everyField} } } pageInfo { endCursor } } }`,
        {},
      ),
    );
    ok(
      await call(
        `{ mfaDevices { edges { cursor node { serialNumber userName enableDate virtualMfaDevice { ${everyField} } } } } }`,
        {},
        alice,
      ),
    );
    ok(
      await call(
        `mutation($input: TagMfaDeviceInput!) { tagMfaDevice(input: $input) { ${everyField} } }`,
        { input: { serialNumber, tags: [{ key: "k", value: "v" }] } },
      ),
    );
    ok(
      await call(
        `mutation($input: DeactivateMfaDeviceInput!) { deactivateMfaDevice(input: $input) { ${everyField} } }`,
        { input: { userName: "alice", serialNumber } },
      ),
    );

    const responses = later.map((r) => r.raw).join("\n");
    const logs = stack.logs.join("\n");
    expect(stack.logs.length).toBeGreaterThan(0);
    const database = await dumpAccount(account.accountId);
    expect(database).toContain(serialNumber);
    const redis = await dumpRedis();
    for (const form of seedForms(seed)) {
      expect(responses).not.toContain(form);
      expect(logs).not.toContain(form);
      expect(database).not.toContain(form);
      expect(redis).not.toContain(form);
    }
    // Nor does the sealed form ever leave the gateway.
    expect(responses).not.toContain(sealedSeed);
    expect(logs).not.toContain(sealedSeed);
  });

  it("has no field on a device that could carry it", async () => {
    const res = ok(
      await stack.gql<{ __type: { fields: { name: string }[] } }>(
        `{ __type(name: "VirtualMfaDevice") { fields { name } } }`,
      ),
    );
    expect(res.__type.fields.map((f) => f.name).sort()).toEqual(
      [
        "createDate",
        "enableDate",
        "path",
        "serialNumber",
        "tags",
        "user",
        "virtualMfaDeviceName",
      ].sort(),
    );
  });

  it("is not written to the audit trail", async () => {
    const account = await createTestAccount(stack);
    const created = ok(
      await stack.gql<{ createVirtualMfaDevice: { base32StringSeed: string } }>(
        CREATE_DEVICE,
        { input: { virtualMfaDeviceName: "audited" } },
        account.rootToken,
      ),
    ).createVirtualMfaDevice;
    const events = await stack.db.auditEvent.findMany({ where: { accountId: account.accountId } });
    expect(events.map((e) => e.action)).toContain("CreateVirtualMFADevice");
    expect(
      JSON.stringify(events, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)),
    ).not.toContain(created.base32StringSeed);
  });
});
