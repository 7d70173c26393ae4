import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, ok } from "../support/graphql";
import {
  createTestAccount,
  createTestUser,
  signInUser,
  type TestAccount,
} from "../support/fixtures";
import { startStack, type Stack } from "../support/stack";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const CREATE = `mutation($input: CreateUserInput!) { createUser(input: $input) { userName path arn } }`;
const LIST = `query($first: Int, $after: String, $pathPrefix: String) {
  users(first: $first, after: $after, pathPrefix: $pathPrefix) {
    edges { cursor node { userName path } }
    pageInfo { hasNextPage endCursor }
  }
}`;

type ListData = {
  users: {
    edges: { cursor: string; node: { userName: string; path: string } }[];
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
  };
};

async function userCount(account: TestAccount) {
  return stack.db.user.count({ where: { accountId: account.accountId } });
}

describe("creating users", () => {
  it("creates a user with IAM's ARN shape", async () => {
    const account = await createTestAccount(stack);
    const res = await stack.gql(
      CREATE,
      { input: { userName: "alice", path: "/engineering/" } },
      account.rootToken,
    );
    expect(ok(res)).toEqual({
      createUser: {
        userName: "alice",
        path: "/engineering/",
        arn: `arn:aws:iam::${account.accountId}:user/engineering/alice`,
      },
    });
  });

  it("refuses the same name in another case with ALREADY_EXISTS and adds nothing", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "Bob");
    const before = await userCount(account);
    const res = await stack.gql(CREATE, { input: { userName: "bOB" } }, account.rootToken);
    expect(errorCode(res)).toBe("ALREADY_EXISTS");
    expect(res.errors![0]!.extensions!.iamCode).toBe("EntityAlreadyExists");
    expect(await userCount(account)).toBe(before);
  });

  it.each([
    ["a name of 65 characters", { userName: "a".repeat(65) }, "less than or equal to 64"],
    ["a name with a space", { userName: "bad name" }, "regular expression pattern"],
    ["a name with a slash", { userName: "a/b" }, "regular expression pattern"],
    ["an empty name", { userName: "" }, "greater than or equal to 1"],
    [
      "a path without a trailing slash",
      { userName: "p1", path: "/invalid-path" },
      "must begin and end with /",
    ],
    [
      "a path without a leading slash",
      { userName: "p2", path: "invalid-path/" },
      "must begin and end with /",
    ],
    [
      "a path of 514 characters",
      { userName: "p3", path: `/${"a".repeat(512)}/` },
      "less than or equal to 512",
    ],
    ["a short password", { userName: "p4", password: "short" }, "between 8 and"],
  ])("refuses %s with BAD_USER_INPUT and AWS's message", async (_label, input, message) => {
    const account = await createTestAccount(stack);
    const before = await userCount(account);
    const res = await stack.gql(CREATE, { input }, account.rootToken);
    expect(errorCode(res)).toBe("BAD_USER_INPUT");
    expect(res.errors![0]!.message).toContain(message);
    expect(await userCount(account)).toBe(before);
  });

  it("accepts a path with an empty segment, as AWS does", async () => {
    const account = await createTestAccount(stack);
    const res = await stack.gql(
      CREATE,
      { input: { userName: "dbl", path: "/test//double/" } },
      account.rootToken,
    );
    expect(ok(res)).toMatchObject({ createUser: { path: "/test//double/" } });
  });

  it("lets an administrator create users but not a plain user", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "admin1", { isAdministrator: true });
    await createTestUser(stack, account.rootToken, "plain1");
    const admin = await signInUser(stack, account.accountId, "admin1");
    const plain = await signInUser(stack, account.accountId, "plain1");
    ok(await stack.gql(CREATE, { input: { userName: "made-by-admin" } }, admin.session!.token));
    const denied = await stack.gql(
      CREATE,
      { input: { userName: "made-by-plain" } },
      plain.session!.token,
    );
    expect(errorCode(denied)).toBe("FORBIDDEN");
    expect(
      await stack.db.user.findFirst({
        where: { userName: "made-by-plain", accountId: account.accountId },
      }),
    ).toBeNull();
  });
});

describe("reading users", () => {
  it("returns the caller when no name is given, and another user by name for root", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "carol");
    const carol = await signInUser(stack, account.accountId, "carol");
    expect(ok(await stack.gql("{ user { userName } }", {}, carol.session!.token))).toEqual({
      user: { userName: "carol" },
    });
    const byName = await stack.gql(
      `{ user(userName: "CAROL") { userName } }`,
      {},
      account.rootToken,
    );
    expect(ok(byName)).toEqual({ user: { userName: "carol" } });
  });

  it("answers NOT_FOUND with AWS's message for an unknown user", async () => {
    const account = await createTestAccount(stack);
    const res = await stack.gql(
      `{ user(userName: "nonexistent-user") { userName } }`,
      {},
      account.rootToken,
    );
    expect(errorCode(res)).toBe("NOT_FOUND");
    expect(res.errors![0]!.message).toBe("The user with name nonexistent-user cannot be found.");
  });

  it("does not let a plain user read another user, existing or not", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "dave");
    await createTestUser(stack, account.rootToken, "erin");
    const dave = await signInUser(stack, account.accountId, "dave");
    const existing = await stack.gql(
      `{ user(userName: "erin") { userName } }`,
      {},
      dave.session!.token,
    );
    const missing = await stack.gql(
      `{ user(userName: "nobody") { userName } }`,
      {},
      dave.session!.token,
    );
    expect(errorCode(existing)).toBe("FORBIDDEN");
    expect(errorCode(missing)).toBe("FORBIDDEN");
    expect(existing.errors![0]!.message).toBe(missing.errors![0]!.message);
  });

  it("never shows another account's users", async () => {
    const mine = await createTestAccount(stack);
    const theirs = await createTestAccount(stack);
    await createTestUser(stack, theirs.rootToken, "secret-user");
    const res = await stack.gql(
      `{ user(userName: "secret-user") { userName } }`,
      {},
      mine.rootToken,
    );
    expect(errorCode(res)).toBe("NOT_FOUND");
    const list = ok(await stack.gql<ListData>(LIST, {}, mine.rootToken));
    expect(list.users.edges.map((e) => e.node.userName)).toEqual(["root"]);
  });
});

describe("listing users", () => {
  it("pages through every user exactly once, in name order", async () => {
    const account = await createTestAccount(stack);
    const names = ["u05", "u01", "u04", "U03", "u02", "u06", "u07"];
    for (const name of names)
      await createTestUser(stack, account.rootToken, name, { path: "/team/" });
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const page: ListData = ok(
        await stack.gql<ListData>(
          LIST,
          { first: 3, after, pathPrefix: "/team/" },
          account.rootToken,
        ),
      );
      seen.push(...page.users.edges.map((e) => e.node.userName));
      after = page.users.pageInfo.hasNextPage ? page.users.pageInfo.endCursor : null;
      pages++;
    } while (after);
    expect(seen).toEqual(["u01", "u02", "U03", "u04", "u05", "u06", "u07"]);
    expect(pages).toBe(3);
  });

  it("pages under the longest path prefix, even one JSON would double in a cursor", async () => {
    const account = await createTestAccount(stack);
    const path = "/" + '"'.repeat(255) + "\\".repeat(255) + "/"; // 512 characters, all legal
    for (const name of ["q1", "q2", "q3"])
      await createTestUser(stack, account.rootToken, name, { path });
    const seen: string[] = [];
    let after: string | null = null;
    do {
      const page: ListData = ok(
        await stack.gql<ListData>(LIST, { first: 1, after, pathPrefix: path }, account.rootToken),
      );
      seen.push(...page.users.edges.map((e) => e.node.userName));
      after = page.users.pageInfo.hasNextPage ? page.users.pageInfo.endCursor : null;
    } while (after);
    expect(seen).toEqual(["q1", "q2", "q3"]);
  });

  it("filters by path prefix", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "in-a", { path: "/a/" });
    await createTestUser(stack, account.rootToken, "in-ab", { path: "/a/b/" });
    await createTestUser(stack, account.rootToken, "in-c", { path: "/c/" });
    const res = ok(await stack.gql<ListData>(LIST, { pathPrefix: "/a/" }, account.rootToken));
    expect(res.users.edges.map((e) => e.node.userName)).toEqual(["in-a", "in-ab"]);
  });

  it("reads the path prefix literally: %, _ and \\ are characters, not patterns", async () => {
    const account = await createTestAccount(stack);
    for (const [userName, path] of [
      ["eng", "/eng/"],
      ["e-pct-g", "/e%g/"],
      ["e-us-g", "/e_g/"],
      ["b-bs-s", "/b\\s/"],
    ]) {
      await createTestUser(stack, account.rootToken, userName!, { path });
    }
    const names = async (pathPrefix: string) =>
      ok(await stack.gql<ListData>(LIST, { pathPrefix }, account.rootToken)).users.edges.map(
        (e) => e.node.userName,
      );
    expect(await names("/e_g")).toEqual(["e-us-g"]);
    expect(await names("/e%")).toEqual(["e-pct-g"]);
    expect(await names("/%")).toEqual([]);
    expect(await names("/b\\")).toEqual(["b-bs-s"]);
  });

  it.each([0, 1001, -5])("refuses first=%i with BAD_USER_INPUT", async (first) => {
    const account = await createTestAccount(stack);
    expect(errorCode(await stack.gql(LIST, { first }, account.rootToken))).toBe("BAD_USER_INPUT");
  });

  it("refuses a garbled cursor with AWS's 'Invalid Marker.'", async () => {
    const account = await createTestAccount(stack);
    for (const after of [
      "invalid-marker-value",
      "", // not "no cursor": that would send a looping client back to page one forever
      "!!!",
      Buffer.from("[1,2]").toString("base64url"),
    ]) {
      const res = await stack.gql(LIST, { after }, account.rootToken);
      expect(errorCode(res)).toBe("BAD_USER_INPUT");
      expect(res.errors![0]!.message).toBe("Invalid Marker.");
    }
  });

  it("refuses a cursor issued to another account", async () => {
    const theirs = await createTestAccount(stack);
    await createTestUser(stack, theirs.rootToken, "t1");
    const page = ok(await stack.gql<ListData>(LIST, { first: 1 }, theirs.rootToken));
    const mine = await createTestAccount(stack);
    const res = await stack.gql(LIST, { after: page.users.pageInfo.endCursor }, mine.rootToken);
    expect(errorCode(res)).toBe("BAD_USER_INPUT");
  });

  it("leaves root out for an administrator, who may not read it, and not for root", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "ada", { isAdministrator: true });
    const ada = (await signInUser(stack, account.accountId, "ada")).session!.token;
    const names = async (token: string) =>
      ok(await stack.gql<ListData>(LIST, {}, token)).users.edges.map((e) => e.node.userName);
    expect(await names(ada)).toEqual(["ada"]);
    expect(await names(account.rootToken)).toEqual(["ada", "root"]);
  });

  it("is for root and administrators only", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "frank");
    const frank = await signInUser(stack, account.accountId, "frank");
    expect(errorCode(await stack.gql(LIST, {}, frank.session!.token))).toBe("FORBIDDEN");
  });
});

describe("deleting users", () => {
  const DELETE = `mutation($input: DeleteUserInput!) { deleteUser(input: $input) { deleted } }`;

  it("deletes a user, after which they cannot be found or sign in", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "gone");
    ok(await stack.gql(DELETE, { input: { userName: "GONE" } }, account.rootToken));
    const res = await stack.gql(`{ user(userName: "gone") { userName } }`, {}, account.rootToken);
    expect(errorCode(res)).toBe("NOT_FOUND");
  });

  it("answers NOT_FOUND for an unknown user and refuses to delete root", async () => {
    const account = await createTestAccount(stack);
    expect(
      errorCode(await stack.gql(DELETE, { input: { userName: "ghost" } }, account.rootToken)),
    ).toBe("NOT_FOUND");
    expect(
      errorCode(await stack.gql(DELETE, { input: { userName: "root" } }, account.rootToken)),
    ).toBe("FORBIDDEN");
  });

  it("lets only root and administrators delete", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "victim");
    await createTestUser(stack, account.rootToken, "mallory");
    const mallory = await signInUser(stack, account.accountId, "mallory");
    expect(
      errorCode(await stack.gql(DELETE, { input: { userName: "victim" } }, mallory.session!.token)),
    ).toBe("FORBIDDEN");
    expect(
      await stack.db.user.count({ where: { accountId: account.accountId, userName: "victim" } }),
    ).toBe(1);
  });
});
