import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, ok } from "../support/graphql";
import { createTestAccount, PASSWORD } from "../support/fixtures";
import { startStack, type Stack } from "../support/stack";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const SIGN_IN = `mutation($input: SignInInput!) {
  signIn(input: $input) { status session { token mfaAuthenticated user { userName isRoot arn } } }
}`;

describe("sign-up and sign-in", () => {
  it("creates an account whose root user is signed in at once", async () => {
    const account = await createTestAccount(stack);
    expect(account.accountId).toMatch(/^\d{12}$/);
    const me = ok(
      await stack.gql<{ user: { userName: string; isRoot: boolean; arn: string; userId: string } }>(
        "{ user { userName isRoot arn userId } }",
        {},
        account.rootToken,
      ),
    );
    expect(me.user).toEqual({
      userName: "root",
      isRoot: true,
      arn: `arn:aws:iam::${account.accountId}:root`,
      userId: account.accountId,
    });
  });

  it("signs root in with email and password and returns a bearer session", async () => {
    const account = await createTestAccount(stack);
    const res = await stack.gql<{
      signIn: { status: string; session: { token: string; mfaAuthenticated: boolean } };
    }>(SIGN_IN, { input: { email: account.email.toUpperCase(), password: PASSWORD } });
    const { signIn } = ok(res);
    expect(signIn.status).toBe("SIGNED_IN");
    expect(signIn.session.mfaAuthenticated).toBe(false);
    expect(signIn.session.token).toMatch(/^mfas_/);
    const me = await stack.gql("{ user { isRoot } }", {}, signIn.session.token);
    expect(ok(me)).toEqual({ user: { isRoot: true } });
  });

  it("stores only a hash of the session token and of the password", async () => {
    const account = await createTestAccount(stack);
    const sessions = await stack.db.session.findMany({ where: { accountId: account.accountId } });
    expect(sessions.length).toBeGreaterThan(0);
    for (const s of sessions) expect(s.tokenHash).not.toContain(account.rootToken.slice(5));
    const root = await stack.db.user.findUniqueOrThrow({ where: { id: account.accountId } });
    expect(root.passwordHash).toMatch(/^scrypt\$/);
    expect(root.passwordHash).not.toContain(PASSWORD);
  });

  it("refuses a wrong password, an unknown email and an unknown user with one message", async () => {
    const account = await createTestAccount(stack);
    const attempts = [
      { email: account.email, password: "wrong password!" },
      { email: `nobody-${account.accountId}@example.com`, password: PASSWORD },
      { account: account.accountId, userName: "ghost", password: PASSWORD },
    ];
    const messages = new Set<string>();
    for (const input of attempts) {
      const res = await stack.gql(SIGN_IN, { input });
      expect(errorCode(res)).toBe("UNAUTHENTICATED");
      expect(res.data).toBeNull();
      messages.add(res.errors![0]!.message);
    }
    expect([...messages]).toEqual(["Incorrect sign-in details."]);
  });

  it("refuses a duplicate email with ALREADY_EXISTS and creates nothing", async () => {
    const account = await createTestAccount(stack);
    const before = await stack.db.account.count();
    const res = await stack.gql(
      `mutation($input: CreateAccountInput!) { createAccount(input: $input) { account { accountId } } }`,
      { input: { email: account.email, phone: "+14155550100", password: PASSWORD } },
    );
    expect(errorCode(res)).toBe("ALREADY_EXISTS");
    expect(await stack.db.account.count()).toBe(before);
  });

  it.each([
    [{ email: "not-an-email", phone: "+14155550100", password: PASSWORD }],
    // Each would be a distinct account email that mail libraries deliver to victim@ itself.
    [{ email: "x1,victim@corp.example", phone: "+14155550100", password: PASSWORD }],
    [{ email: "Security<victim@corp.example>", phone: "+14155550100", password: PASSWORD }],
    [{ email: "a@example.com", phone: "555-0100", password: PASSWORD }],
    [{ email: "b@example.com", phone: "+14155550100", password: "short" }],
    [
      {
        email: "c@example.com",
        phone: "+14155550100",
        password: PASSWORD,
        accountAlias: "Bad Alias",
      },
    ],
    // Twelve digits read as an account id at sign-in, so such an alias could never be used.
    [
      {
        email: "d@example.com",
        phone: "+14155550100",
        password: PASSWORD,
        accountAlias: "123456789012",
      },
    ],
  ])("refuses bad sign-up input %j with BAD_USER_INPUT", async (input) => {
    const before = await stack.db.account.count();
    const res = await stack.gql(
      `mutation($input: CreateAccountInput!) { createAccount(input: $input) { account { accountId } } }`,
      { input },
    );
    expect(errorCode(res)).toBe("BAD_USER_INPUT");
    expect(await stack.db.account.count()).toBe(before);
  });
});

describe("sessions", () => {
  it("refuses every operation without a session", async () => {
    const res = await stack.gql("{ user { userName } }");
    expect(errorCode(res)).toBe("UNAUTHENTICATED");
  });

  it("refuses a forged token", async () => {
    const res = await stack.gql(
      "{ user { userName } }",
      {},
      "mfas_forgedforgedforgedforgedforgedforged1234567",
    );
    expect(errorCode(res)).toBe("UNAUTHENTICATED");
  });

  it("ends a session on signOut", async () => {
    const account = await createTestAccount(stack);
    ok(await stack.gql("mutation { signOut { signedOut } }", {}, account.rootToken));
    const res = await stack.gql("{ user { userName } }", {}, account.rootToken);
    expect(errorCode(res)).toBe("UNAUTHENTICATED");
  });

  it("refuses an expired session", async () => {
    const account = await createTestAccount(stack);
    await stack.db.session.updateMany({
      where: { accountId: account.accountId },
      data: { expiresAt: new Date(Date.now() - 1000) },
    });
    const res = await stack.gql("{ user { userName } }", {}, account.rootToken);
    expect(errorCode(res)).toBe("UNAUTHENTICATED");
  });
});
