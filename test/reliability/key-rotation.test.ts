/**
 * Rotating the sealing key keeps every device working: devices sealed under the old key, then
 * workers with the keyring `new,old`, the reseal (src/maintenance/reseal.ts), then workers with
 * only the new key verify every device. Runs on a PostgreSQL of its own, because the reseal
 * walks every device in the database.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resealAllDevices, unfinishedReseal } from "../../src/maintenance/reseal";
import { createWorkerClient } from "../../worker/client";
import { generateKeyringSpec } from "../../worker/seal/keyring";
import { createTestAccount, createTestUser } from "../support/fixtures";
import { errorCode } from "../support/graphql";
import {
  enrolForSignIn,
  GET_SESSION_TOKEN,
  nextCode,
  passwordSession,
  type EnrolledDevice,
} from "../support/signin";
import { startStack, type Stack } from "../support/stack";
import { cleanUpAll, startPostgres } from "../support/throwaway";

const OLD = generateKeyringSpec("old-key");
const NEW = generateKeyringSpec("new-key");
const USERS = 6;

let stack: Stack;
beforeAll(async () => {
  const pg = await startPostgres();
  stack = await startStack({ workers: 0, env: { DATABASE_URL: pg.url } });
}, 120_000);
afterAll(async () => {
  await stack?.stop();
  await cleanUpAll();
});

async function replaceWorkers(keyringSpec: string) {
  const old = stack.workers.splice(0);
  await stack.addWorker(keyringSpec);
  await Promise.all(old.map((w) => w.stop()));
}

/** `npm run reseal`'s work, through a worker client of its own, as the script runs it. */
async function reseal() {
  const worker = createWorkerClient({ redis: stack.redis, prefix: stack.prefix, deadlineMs: 5000 });
  try {
    return await resealAllDevices(stack.db, worker);
  } finally {
    await worker.close();
  }
}

async function stepUpEach(devices: { token: string; device: EnrolledDevice }[]) {
  const outcomes: string[] = [];
  for (const { token, device } of devices) {
    const res = await stack.gql(
      GET_SESSION_TOKEN,
      { input: { serialNumber: device.serialNumber, tokenCode: await nextCode(stack, device) } },
      token,
    );
    outcomes.push(errorCode(res) ?? "OK");
  }
  return outcomes;
}

describe("rotating the sealing key", () => {
  it("keeps every device working: old key, then new+old and reseal, then the new key alone", async () => {
    await stack.addWorker(OLD);
    const account = await createTestAccount(stack);
    const devices: { token: string; device: EnrolledDevice }[] = [];
    for (let i = 0; i < USERS; i++) {
      const userName = `user${i}`;
      await createTestUser(stack, account.rootToken, userName);
      const token = await passwordSession(stack, { account: account.accountId, userName });
      devices.push({
        token,
        device: await enrolForSignIn(stack, account.rootToken, userName, `${userName}-phone`),
      });
    }
    expect(new Set((await stack.db.virtualMfaDevice.findMany()).map((d) => d.keyId))).toEqual(
      new Set(["old-key"]),
    );

    await replaceWorkers(`${NEW},${OLD}`);
    const report = await reseal();
    const rows = await stack.db.virtualMfaDevice.findMany();
    expect(report).toMatchObject({ scanned: rows.length, resealed: rows.length });
    expect(new Set(rows.map((d) => d.keyId))).toEqual(new Set(["new-key"]));

    await replaceWorkers(NEW);
    const withNewKeyOnly = await stepUpEach(devices);

    // The control: a worker that holds only the retired key can no longer open any seal.
    await replaceWorkers(OLD);
    const withOldKeyOnly = await stepUpEach(devices);
    console.log(
      `[key rotation] resealed ${report.resealed}/${report.scanned} devices; ` +
        `verifications with the new key only: ${withNewKeyOnly.join(",")}; ` +
        `with the old key only: ${withOldKeyOnly.join(",")}`,
    );
    expect(withNewKeyOnly).toEqual(Array(USERS).fill("OK"));
    expect(withOldKeyOnly).toEqual(Array(USERS).fill("SERVICE_UNAVAILABLE"));
  }, 120_000);

  it("passes over a seal it cannot open, names it, and reseals every other device", async () => {
    await replaceWorkers(`${NEW},${OLD}`);
    const [first, ...rest] = await stack.db.virtualMfaDevice.findMany({ orderBy: { id: "asc" } });
    // The first device in the run's order: before, the run stopped there and resealed nothing.
    await stack.db.virtualMfaDevice.update({
      where: { id: first!.id },
      data: { sealedSeed: "AAAAAAAA" },
    });
    const report = await reseal();
    expect(report.failed).toEqual([{ serialNumber: first!.serialNumber, reason: "UNSEAL_FAILED" }]);
    expect(report.resealed).toBe(rest.length);
    expect(report.devicesByKeyId).toEqual({ "new-key": rest.length + 1 });
    expect(unfinishedReseal(report)).toContain(first!.serialNumber);
  }, 120_000);
});
