/**
 * A slow Redis, not a down one: every command arrives 1.5 s late, each well inside the gateway's
 * Redis deadline (WORKER_DEADLINE_MS 5 s here). No Redis call may then run inside a PostgreSQL
 * transaction: startRootRecovery once held its send budgets' round trips inside one, which
 * outlasted Prisma's 5 s transaction timeout, answered INTERNAL_SERVER_ERROR, stored nothing,
 * and still counted the sends, so a root with one send a day could not recover for a day.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/free-port";
import { createTestAccount, PASSWORD } from "../support/fixtures";
import { errorCode, ok } from "../support/graphql";
import { from } from "../support/signin";
import { startStack, type Stack } from "../support/stack";

const REDIS_PORT = Number(new URL(process.env.REDIS_URL ?? "redis://127.0.0.1:6379").port || 6379);
let delayMs = 0;
let proxy: net.Server;
let stack: Stack;

/** Forwards to the real Redis, holding each chunk the client sends for `delayMs`. */
function delayingProxy(): net.Server {
  return net.createServer((client) => {
    const upstream = net.connect(REDIS_PORT, "127.0.0.1");
    client.on("data", (chunk) => {
      const delay = delayMs;
      if (delay === 0) upstream.write(chunk);
      else setTimeout(() => upstream.write(chunk), delay);
    });
    upstream.on("data", (chunk) => client.write(chunk));
    const end = () => (client.destroy(), upstream.destroy());
    for (const socket of [client, upstream]) socket.on("error", end).on("close", end);
  });
}

beforeAll(async () => {
  const port = await freePort();
  proxy = delayingProxy();
  await new Promise<void>((resolve) => proxy.listen(port, "127.0.0.1", resolve));
  stack = await startStack({
    env: {
      REDIS_URL: `redis://127.0.0.1:${port}`,
      WORKER_DEADLINE_MS: "5000",
      TRUST_PROXY: "1",
      ROOT_RECOVERY_SENDS_PER_SOURCE: "1",
    },
  });
});
afterAll(async () => {
  delayMs = 0;
  await stack?.stop();
  await new Promise((resolve) => proxy?.close(resolve));
});

const START = `mutation($input: StartRootRecoveryInput!) { startRootRecovery(input: $input) { recoveryToken } }`;

describe("a slow Redis", () => {
  it("still starts a root recovery, and counts its one send only once it is stored", async () => {
    const account = await createTestAccount(stack);
    const input = { email: account.email, password: PASSWORD };
    delayMs = 1500;
    const slow = await stack.gql(START, { input }, undefined, from("203.0.113.77"));
    delayMs = 0;
    ok(slow);
    expect(await stack.db.rootRecovery.count({ where: { accountId: account.accountId } })).toBe(1);
    // The send was counted: the source's one send a day is gone, for any account.
    const other = await createTestAccount(stack);
    const again = await stack.gql(
      START,
      { input: { email: other.email, password: PASSWORD } },
      undefined,
      from("203.0.113.77"),
    );
    expect(errorCode(again)).toBe("RATE_LIMITED");
  }, 60_000);
});
