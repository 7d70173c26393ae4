/** Builders for the entities most tests need, each unique so tests never collide. */
import { randomInt, randomUUID } from "node:crypto";
import { ok } from "./graphql";
import type { Stack } from "./stack";

export const PASSWORD = "correct horse battery staple";

/**
 * A phone number of its own for each account, in the 555-01xx range kept for fiction, so
 * per-recipient limits on recovery messages never join accounts of different tests.
 */
export const testPhone = () => `+1415555${String(randomInt(0, 10_000)).padStart(4, "0")}`;

export interface TestAccount {
  accountId: string;
  email: string;
  phone: string;
  rootToken: string;
}

export async function createTestAccount(stack: Stack, alias?: string): Promise<TestAccount> {
  const email = `root-${randomUUID()}@example.com`;
  const phone = testPhone();
  const data = ok(
    await stack.gql<{
      createAccount: { account: { accountId: string }; session: { token: string } };
    }>(
      `mutation($input: CreateAccountInput!) {
        createAccount(input: $input) { account { accountId } session { token } }
      }`,
      { input: { email, phone, password: PASSWORD, accountAlias: alias } },
    ),
  );
  return {
    accountId: data.createAccount.account.accountId,
    email,
    phone,
    rootToken: data.createAccount.session.token,
  };
}

export async function createTestUser(
  stack: Stack,
  rootToken: string,
  userName: string,
  extra: { path?: string; isAdministrator?: boolean } = {},
) {
  return ok(
    await stack.gql<{ createUser: { userId: string; userName: string; arn: string } }>(
      `mutation($input: CreateUserInput!) { createUser(input: $input) { userId userName arn } }`,
      { input: { userName, password: PASSWORD, ...extra } },
      rootToken,
    ),
  ).createUser;
}

export async function signInUser(stack: Stack, accountId: string, userName: string) {
  const data = ok(
    await stack.gql<{
      signIn: {
        status: string;
        session: { token: string } | null;
        challenge: { challenge: string } | null;
      };
    }>(
      `mutation($input: SignInInput!) {
        signIn(input: $input) { status session { token } challenge { challenge } }
      }`,
      { input: { account: accountId, userName, password: PASSWORD } },
    ),
  );
  return data.signIn;
}
