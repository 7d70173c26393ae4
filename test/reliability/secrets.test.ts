/**
 * Secrets at rest and in transit. After a mixed workload (create, enable, sign in, step-up,
 * resync, rotate, recovery codes, root recovery) no seed appears in clear — base32, hex, base64
 * or raw bytes — in either process's logs, the outbox, either /metrics page, or any table of
 * the database. And a sealed seed copied onto another device's row does not unseal there.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestAccount, createTestUser, PASSWORD } from "../support/fixtures";
import { errorCode, ok } from "../support/graphql";
import {
  answer,
  challengeFor,
  enrolForSignIn,
  GET_SESSION_TOKEN,
  generateRecoveryCodes,
  mfaSession,
  nextCode,
  outboxOf,
  passwordSession,
} from "../support/signin";
import { startStack, type Stack } from "../support/stack";
import { base32Decode, codePair, createDevice, currentStep, RESYNC_DEVICE } from "../support/totp";
import { cleanUpAll, spawnWorker, type ChildWorker } from "../support/throwaway";
import { testKeyringSpec } from "../support/workers";

let stack: Stack;
let child: ChildWorker;
beforeAll(async () => {
  // One worker in process and one real worker process, whose /metrics is read below.
  stack = await startStack({ workers: 1 });
  child = await spawnWorker({
    redisUrl: stack.config.REDIS_URL,
    prefix: stack.prefix,
    keyringSpec: testKeyringSpec(),
    logs: stack.logs,
  });
});
afterAll(async () => {
  await stack?.stop();
  await cleanUpAll();
});

const ROTATE = `mutation($input: RotateMfaDeviceInput!) {
  rotateMfaDevice(input: $input) { __typename }
}`;
const START_RECOVERY = `mutation($input: StartRootRecoveryInput!) {
  startRootRecovery(input: $input) { recoveryToken }
}`;
const COMPLETE_RECOVERY = `mutation($input: CompleteRootRecoveryInput!) {
  completeRootRecovery(input: $input) { session { token } }
}`;

/** Every form a seed could leak in. */
function formsOf(seed: string): string[] {
  const raw = base32Decode(seed);
  return [
    seed,
    seed.toLowerCase(),
    raw.toString("hex"),
    raw.toString("hex").toUpperCase(),
    raw.toString("base64"),
    raw.toString("base64url"),
    raw.toString("latin1"),
    // A 16-byte slice catches partial dumps and other encodings' prefixes.
    raw.subarray(0, 16).toString("hex"),
    seed.slice(0, 26),
  ];
}

async function everyTableAsText(): Promise<string> {
  const tables = await stack.db.$queryRaw<{ table_name: string }[]>`
    SELECT table_name FROM information_schema.tables
    WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`;
  const parts: string[] = [];
  for (const { table_name } of tables) {
    const rows = await stack.db.$queryRawUnsafe<{ row: unknown }[]>(
      `SELECT row_to_json(t)::text AS row FROM "${table_name.replace(/"/g, "")}" t`,
    );
    // One push per row: spreading a large table into push() overflows the call stack.
    parts.push(table_name);
    for (const r of rows) parts.push(String(r.row));
  }
  return parts.join("\n");
}

describe("secrets at rest and in transit", () => {
  it("no seed is in clear in the logs, the outbox, /metrics or any table after a mixed workload", async () => {
    const seeds: string[] = [];
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "alice");
    const aliceToken = await passwordSession(stack, {
      account: account.accountId,
      userName: "alice",
    });
    const alice = await enrolForSignIn(stack, account.rootToken, "alice", "alice-phone");
    seeds.push(alice.seed);

    // Sign in with MFA, step up, generate recovery codes and sign in with one.
    const who = { account: account.accountId, userName: "alice" };
    const session = await mfaSession(stack, who, alice);
    ok(
      await stack.gql(
        GET_SESSION_TOKEN,
        { input: { serialNumber: alice.serialNumber, tokenCode: await nextCode(stack, alice) } },
        aliceToken,
      ),
    );
    const recoveryCodes = await generateRecoveryCodes(stack, session);
    const { challenge } = await challengeFor(stack, who);
    ok(await answer(stack, { challenge, code: recoveryCodes[0]! }));

    // Resync, then rotate to a new device.
    const step = await currentStep(stack);
    ok(
      await stack.gql(
        RESYNC_DEVICE,
        {
          input: {
            userName: "alice",
            serialNumber: alice.serialNumber,
            ...codePair(alice.seed, step + 1),
          },
        },
        account.rootToken,
      ),
    );
    const replacement = await createDevice(stack, account.rootToken, "alice-new-phone");
    seeds.push(replacement.seed);
    ok(
      await stack.gql(
        ROTATE,
        {
          input: {
            userName: "alice",
            oldSerialNumber: alice.serialNumber,
            newSerialNumber: replacement.serialNumber,
            ...codePair(replacement.seed, step - 3),
          },
        },
        account.rootToken,
      ),
    );

    // Root recovery: the root has a device, loses it, recovers with email and phone codes.
    const rootDevice = await enrolForSignIn(stack, account.rootToken, "root", "root-mfa");
    seeds.push(rootDevice.seed);
    const started = ok(
      await stack.gql<{ startRootRecovery: { recoveryToken: string } }>(START_RECOVERY, {
        input: { email: account.email, password: PASSWORD },
      }),
    ).startRootRecovery;
    const sent = await outboxOf(stack, account.accountId, "root-recovery-code");
    const code = (channel: string) =>
      /\b(\d{8})\b/.exec(sent.filter((m) => m.channel === channel).at(-1)!.body)![1]!;
    ok(
      await stack.gql(COMPLETE_RECOVERY, {
        input: {
          recoveryToken: started.recoveryToken,
          emailCode: code("EMAIL"),
          phoneCode: code("SMS"),
        },
      }),
    );

    const gatewayMetrics = await (await fetch(`${stack.origin}/metrics`)).text();
    const workerMetrics = await (
      await fetch(`http://127.0.0.1:${child.metricsPort}/metrics`)
    ).text();
    const outbox = JSON.stringify(
      await stack.db.outboxMessage.findMany(),
      (_key, value: unknown) => (typeof value === "bigint" ? String(value) : value),
    );
    const tables = await everyTableAsText();
    const haystacks = {
      logs: stack.logs.join("\n"),
      outbox,
      gatewayMetrics,
      workerMetrics,
      tables,
    };
    console.log(
      `[secrets] searched ${seeds.length} seeds × ${formsOf(seeds[0]!).length} forms in ` +
        Object.entries(haystacks)
          .map(([name, text]) => `${name} (${text.length} chars)`)
          .join(", "),
    );
    // The haystacks are real: they hold what the workload did.
    expect(stack.logs.length).toBeGreaterThan(10);
    expect(workerMetrics).toContain("process_resident_memory_bytes");
    expect(tables).toContain(alice.serialNumber);
    for (const seed of seeds) {
      for (const form of formsOf(seed)) {
        for (const [name, text] of Object.entries(haystacks)) {
          expect(text.includes(form), `a form of a seed is in ${name}`).toBe(false);
        }
      }
    }
  }, 120_000);

  it("a sealed seed copied onto another device's row does not unseal there: verification fails closed", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "bob");
    await createTestUser(stack, account.rootToken, "carol");
    const bobToken = await passwordSession(stack, { account: account.accountId, userName: "bob" });
    const bob = await enrolForSignIn(stack, account.rootToken, "bob", "bob-phone");
    const carol = await enrolForSignIn(stack, account.rootToken, "carol", "carol-phone");
    const source = await stack.db.virtualMfaDevice.findUniqueOrThrow({
      where: { serialNumber: carol.serialNumber },
    });
    await stack.db.virtualMfaDevice.update({
      where: { serialNumber: bob.serialNumber },
      data: { sealedSeed: source.sealedSeed, keyId: source.keyId },
    });

    // Carol's code (from the seed now sealed in Bob's row) and Bob's own code both fail.
    const outcomes: string[] = [];
    for (const code of [await nextCode(stack, carol), await nextCode(stack, bob)]) {
      const res = await stack.gql(
        GET_SESSION_TOKEN,
        { input: { serialNumber: bob.serialNumber, tokenCode: code } },
        bobToken,
      );
      outcomes.push(errorCode(res) ?? "OK");
    }
    console.log(`[secrets] verification with a moved seal answered: ${outcomes.join(", ")}`);
    for (const outcome of outcomes) {
      expect(["SERVICE_UNAVAILABLE", "INVALID_AUTHENTICATION_CODE"]).toContain(outcome);
    }
  });
});
