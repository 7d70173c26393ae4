/**
 * Lockout abuse through the real gateway: one attacker, from one source, tries to lock out 100
 * users with wrong passwords and, as the worst case, with their passwords and wrong MFA codes.
 * Every user must still sign in (password and code) from their own source. Sources are client
 * IPs: the stack trusts X-Forwarded-For (TRUST_PROXY=1), so each caller presents its own.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestAccount, createTestUser, PASSWORD } from "../support/fixtures";
import { errorCode, type GraphQLResponse } from "../support/graphql";
import {
  answer,
  enrolForSignIn,
  from,
  nextCode,
  SIGN_IN,
  wrongCode,
  type EnrolledDevice,
} from "../support/signin";
import { startStack, type Stack } from "../support/stack";

const VICTIMS = 100;
const ATTACKER = "192.0.2.66";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ workers: 2, env: { TRUST_PROXY: "1" } });
});
afterAll(async () => {
  await stack?.stop();
});

type SignedIn = {
  signIn: {
    status: string;
    session: { token: string } | null;
    challenge: { challenge: string } | null;
  };
};

function signIn(account: string, userName: string, password: string, source: string) {
  return stack.gql<SignedIn>(
    SIGN_IN,
    { input: { account, userName, password } },
    undefined,
    from(source),
  ) as Promise<GraphQLResponse<SignedIn>>;
}

describe("lockout abuse", () => {
  it("an attacker from one source cannot lock 100 users out: each still signs in from their own source", async () => {
    const account = await createTestAccount(stack);
    const victims: { userName: string; device: EnrolledDevice }[] = [];
    for (let i = 0; i < VICTIMS; i += 10) {
      await Promise.all(
        Array.from({ length: 10 }, async (_, j) => {
          const userName = `victim${i + j}`;
          await createTestUser(stack, account.rootToken, userName);
          const device = await enrolForSignIn(
            stack,
            account.rootToken,
            userName,
            `${userName}-phone`,
          );
          victims.push({ userName, device });
        }),
      );
    }

    const attacker = { attempts: 0, outcomes: new Map<string, number>() };
    const tally = (outcome: string) => {
      attacker.attempts++;
      attacker.outcomes.set(outcome, (attacker.outcomes.get(outcome) ?? 0) + 1);
    };
    for (let i = 0; i < victims.length; i += 10) {
      await Promise.all(
        victims.slice(i, i + 10).map(async ({ userName, device }) => {
          for (let k = 0; k < 3; k++) {
            const res = await signIn(account.accountId, userName, "wrong password!!", ATTACKER);
            tally(`password:${errorCode(res) ?? res.data?.signIn.status}`);
          }
          // Worst case: the attacker has the password and sends wrong codes.
          const res = await signIn(account.accountId, userName, PASSWORD, ATTACKER);
          const challenge = res.data?.signIn.challenge?.challenge;
          tally(`password:${errorCode(res) ?? res.data?.signIn.status}`);
          if (!challenge) return;
          for (let k = 0; k < 3; k++) {
            const wrong = await answer(
              stack,
              { challenge, code: await wrongCode(stack, device) },
              from(ATTACKER),
            );
            tally(`code:${errorCode(wrong) ?? "OK"}`);
          }
        }),
      );
    }

    let signedIn = 0;
    const failures: string[] = [];
    for (const [index, { userName, device }] of victims.entries()) {
      const own = `198.51.100.${index + 1}`;
      const res = await signIn(account.accountId, userName, PASSWORD, own);
      const challenge = res.data?.signIn.challenge?.challenge;
      if (!challenge) {
        failures.push(`${userName}: ${errorCode(res) ?? res.data?.signIn.status}`);
        continue;
      }
      const done = await answer(
        stack,
        { challenge, code: await nextCode(stack, device) },
        from(own),
      );
      if (done.data?.answerMfaChallenge?.session.token) signedIn++;
      else failures.push(`${userName}: ${errorCode(done)}`);
    }
    console.log(
      `[lockout] attacker from one source: ${attacker.attempts} attempts on ${VICTIMS} users, ` +
        `outcomes ${JSON.stringify(Object.fromEntries(attacker.outcomes))}; ` +
        `users who then signed in from their own source: ${signedIn}/${VICTIMS}`,
    );
    if (failures.length) console.log("[lockout] users refused:", failures.slice(0, 10));
    expect(attacker.outcomes.get("code:OK") ?? 0).toBe(0);
    // The attacker's source ran out of budget, for passwords and for codes: the limits bit
    // the attacker, not the users.
    expect(attacker.outcomes.get("password:RATE_LIMITED") ?? 0).toBeGreaterThan(0);
    expect(attacker.outcomes.get("code:RATE_LIMITED") ?? 0).toBeGreaterThan(0);
    expect(signedIn).toBe(VICTIMS);
  }, 240_000);
});
