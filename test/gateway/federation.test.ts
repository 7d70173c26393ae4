/**
 * The gateway as an Apollo Federation 2 subgraph: it answers `_service { sdl }` with the
 * committed schema.graphql, resolves `User` and `VirtualMfaDevice` references in batches within
 * the caller's account, and composes with another subgraph behind a router.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } from "@apollo/gateway";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { errorCode, gqlRequest, ok } from "../support/graphql";
import { createTestAccount, createTestUser, signInUser } from "../support/fixtures";
import { startStack, type Stack } from "../support/stack";
import { startOrdersSubgraph } from "../support/subgraph-orders";
import { createDevice } from "../support/totp";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const ENTITIES = `query($representations: [_Any!]!) {
  _entities(representations: $representations) {
    __typename
    ... on User { userId userName arn }
    ... on VirtualMfaDevice { serialNumber virtualMfaDeviceName user { userName } }
  }
}`;

type Entity = {
  __typename: string;
  userId?: string;
  userName?: string;
  arn?: string;
  serialNumber?: string;
  virtualMfaDeviceName?: string;
  user?: { userName: string } | null;
} | null;

const entities = (representations: unknown[], token?: string) =>
  stack.gql<{ _entities: Entity[] }>(ENTITIES, { representations }, token);

async function userIdOf(accountId: string, userName: string) {
  const row = await stack.db.user.findFirstOrThrow({ where: { accountId, userName } });
  return row.id;
}

describe("the subgraph's SDL", () => {
  it("answers _service { sdl } with exactly the committed schema.graphql", async () => {
    const committed = readFileSync(join(__dirname, "..", "..", "schema.graphql"), "utf8");
    const res = ok(await stack.gql<{ _service: { sdl: string } }>("{ _service { sdl } }"));
    expect(res._service.sdl + "\n").toBe(committed);
    expect(committed).toContain('@link(url: "https://specs.apollo.dev/federation/v2.3"');
    expect(committed).toMatch(/type User\s+@key\(fields: "userId"\)/);
    expect(committed).toMatch(/type VirtualMfaDevice\s+@key\(fields: "serialNumber"\)/);
  });
});

describe("entity references", () => {
  it("resolves users and devices of the caller's account, with their fields", async () => {
    const account = await createTestAccount(stack);
    const alice = await createTestUser(stack, account.rootToken, "alice");
    const device = await createDevice(stack, account.rootToken, "spare");
    const res = ok(
      await entities(
        [
          { __typename: "User", userId: alice.userId },
          { __typename: "VirtualMfaDevice", serialNumber: device.serialNumber },
        ],
        account.rootToken,
      ),
    );
    expect(res._entities).toEqual([
      { __typename: "User", userId: alice.userId, userName: "alice", arn: alice.arn },
      {
        __typename: "VirtualMfaDevice",
        serialNumber: device.serialNumber,
        virtualMfaDeviceName: "spare",
        user: null,
      },
    ]);
  });

  it("reads many references of one type with one database query", async () => {
    const account = await createTestAccount(stack);
    const names = ["u1", "u2", "u3", "u4"];
    const ids = [];
    for (const name of names)
      ids.push((await createTestUser(stack, account.rootToken, name)).userId);
    const findMany = vi.spyOn(stack.db.user, "findMany");
    try {
      const res = ok(
        await entities(
          ids.map((userId) => ({ __typename: "User", userId })),
          account.rootToken,
        ),
      );
      expect(res._entities.map((e) => e?.userName)).toEqual(names);
      expect(findMany).toHaveBeenCalledTimes(1);
    } finally {
      findMany.mockRestore();
    }
  });

  it("resolves another account's user and device to null, the same as unknown ones", async () => {
    const mine = await createTestAccount(stack);
    const theirs = await createTestAccount(stack);
    const theirUser = await createTestUser(stack, theirs.rootToken, "their-user");
    const theirDevice = await createDevice(stack, theirs.rootToken, "their-device");
    const res = ok(
      await entities(
        [
          { __typename: "User", userId: theirUser.userId },
          { __typename: "User", userId: theirs.accountId },
          { __typename: "VirtualMfaDevice", serialNumber: theirDevice.serialNumber },
          { __typename: "User", userId: "AIDANOSUCHUSER0000000" },
          { __typename: "User", userId: { not: "a string" } },
        ],
        mine.rootToken,
      ),
    );
    expect(res._entities).toEqual([null, null, null, null, null]);
    expect(JSON.stringify(res)).not.toContain("their-");
  });

  it("shows a plain user only what they could read otherwise: themselves, their device", async () => {
    const account = await createTestAccount(stack);
    const bob = await createTestUser(stack, account.rootToken, "bob");
    const carol = await createTestUser(stack, account.rootToken, "carol");
    const spare = await createDevice(stack, account.rootToken, "spare");
    const session = (await signInUser(stack, account.accountId, "bob")).session!.token;
    const res = ok(
      await entities(
        [
          { __typename: "User", userId: bob.userId },
          { __typename: "User", userId: carol.userId },
          { __typename: "User", userId: await userIdOf(account.accountId, "root") },
          { __typename: "VirtualMfaDevice", serialNumber: spare.serialNumber },
        ],
        session,
      ),
    );
    expect(res._entities).toEqual([
      { __typename: "User", userId: bob.userId, userName: "bob", arn: bob.arn },
      null,
      null,
      null,
    ]);
  });

  it.each([
    [{ __typename: "Account", accountId: "123456789012" }],
    [{ __typename: "NoSuchType" }],
    [{ userId: "AIDANOTYPENAME0000000" }],
  ])(
    "refuses a representation of no entity of this subgraph, %j, with BAD_USER_INPUT",
    async (representation) => {
      const account = await createTestAccount(stack);
      const res = await entities([representation], account.rootToken);
      expect(errorCode(res)).toBe("BAD_USER_INPUT");
    },
  );

  it("needs a session", async () => {
    const account = await createTestAccount(stack);
    const alice = await createTestUser(stack, account.rootToken, "alice");
    const res = await entities([{ __typename: "User", userId: alice.userId }]);
    expect(errorCode(res)).toBe("UNAUTHENTICATED");
    expect(res.data?._entities).toEqual([null]);
  });
});

describe("composition with another subgraph", () => {
  it("serves orders with their owners through a router, forwarding the caller's session", async () => {
    const account = await createTestAccount(stack);
    const alice = await createTestUser(stack, account.rootToken, "alice");
    const bob = await createTestUser(stack, account.rootToken, "bob");
    const stranger = await createTestAccount(stack);
    const orders = await startOrdersSubgraph([
      { id: "o-1", total: 12, ownerUserId: alice.userId },
      { id: "o-2", total: 30, ownerUserId: bob.userId },
      { id: "o-3", total: 7, ownerUserId: stranger.accountId },
    ]);
    const gateway = new ApolloGateway({
      supergraphSdl: new IntrospectAndCompose({
        subgraphs: [
          { name: "mfa", url: stack.url },
          { name: "orders", url: orders.url },
        ],
      }),
      buildService: ({ url }) =>
        new RemoteGraphQLDataSource<{ authorization?: string }>({
          url,
          willSendRequest({ request, context }) {
            if (context.authorization)
              request.http?.headers.set("authorization", context.authorization);
          },
        }),
    });
    const router = new ApolloServer<{ authorization?: string }>({
      gateway,
      logger: { debug() {}, info() {}, warn() {}, error: console.error },
    });
    const { url } = await startStandaloneServer(router, {
      listen: { port: 0, host: "127.0.0.1" },
      context: async ({ req }) => ({ authorization: req.headers.authorization }),
    });
    try {
      const query = `query OrdersWithOwners { orders { id total owner { userName arn } } }`;
      const res = ok(
        await gqlRequest<{
          orders: { id: string; total: number; owner: { userName: string; arn: string } | null }[];
        }>(url, query, {}, account.rootToken),
      );
      expect(res.orders).toEqual([
        { id: "o-1", total: 12, owner: { userName: "alice", arn: alice.arn } },
        { id: "o-2", total: 30, owner: { userName: "bob", arn: bob.arn } },
        // The stranger's root user belongs to another account: the gateway will not say.
        { id: "o-3", total: 7, owner: null },
      ]);
      // Without the caller's session, the gateway resolves no owner at all.
      const anonymous = await gqlRequest(url, query);
      expect(errorCode(anonymous)).toBe("UNAUTHENTICATED");
    } finally {
      await router.stop();
      await orders.stop();
    }
  });
});
