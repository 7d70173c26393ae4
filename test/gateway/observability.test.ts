/**
 * What an operator sees: Prometheus metrics on the gateway and on a worker that move when
 * verifications happen, JSON logs in which a gateway request id reappears in the worker's lines
 * for that request, and never a seed or a code in either.
 */
import { randomUUID } from "node:crypto";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWorkerClient, WorkerUnavailableError } from "../../worker/client";
import { createHandlers } from "../../worker/handlers";
import { createLogger } from "../../worker/logger";
import type { RedisConnection } from "../../worker/lua/scripts";
import { instrumentHandlers, listenForProbes } from "../../worker/metrics";
import { connectRedis } from "../../worker/redis-connection";
import { parseKeyring } from "../../worker/seal/keyring";
import { createWorker, type Worker } from "../../worker/worker";
import { errorCode, gqlRequest, ok } from "../support/graphql";
import { createTestAccount, createTestUser, type TestAccount } from "../support/fixtures";
import { logSink, startStack, type Stack } from "../support/stack";
import { testKeyringSpec } from "../support/workers";
import {
  awayFromStepEdge,
  codePair,
  createDevice,
  ENABLE_DEVICE,
  type CreatedDevice,
} from "../support/totp";

let stack: Stack;
let worker: Worker;
let workerRedis: RedisConnection;
let probes: Server;
let workerMetricsUrl: string;

/** One auth worker wired as worker/main.ts wires it: instrumented handlers, /metrics served. */
beforeAll(async () => {
  // The default cap of 100 labels: far above the schema's root fields, so a name in the
  // scrape is there because it is a label, never pushed out to `other` by earlier tests.
  stack = await startStack({ workers: 0 });
  const registry = new Registry();
  workerRedis = (await connectRedis({ url: stack.config.REDIS_URL })) as RedisConnection;
  worker = createWorker({
    redis: workerRedis,
    prefix: stack.prefix,
    handlers: instrumentHandlers(
      createHandlers({
        redis: workerRedis,
        keyring: parseKeyring(testKeyringSpec()),
        prefix: stack.prefix,
      }),
      registry,
    ),
    logger: createLogger("worker", "info", logSink(stack.logs)),
    metrics: registry,
  });
  await worker.start();
  probes = await listenForProbes(0, registry, () => "ready", "127.0.0.1");
  workerMetricsUrl = `http://127.0.0.1:${(probes.address() as AddressInfo).port}/metrics`;
});
afterAll(async () => {
  await worker?.stop();
  await new Promise((resolve) => probes?.close(resolve));
  await workerRedis?.close();
  await stack?.stop();
});

const gatewayMetricsUrl = () => `${stack.origin}/metrics`;

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("text/plain");
  return res.text();
}

/** The value of one sample, or 0 when the series does not exist yet. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = (match[2] ?? "").split(",");
    if (wanted.every((pair) => present.includes(pair))) return Number(match[3]);
  }
  return 0;
}

const ENABLE = `mutation EnableWithWrongCodes($input: EnableMfaDeviceInput!) {
  enableMfaDevice(input: $input) { serialNumber }
}`;
/** Wrong codes, chosen so a stray number in /metrics is unlikely to match them by chance. */
const WRONG = { authenticationCode1: "918273", authenticationCode2: "564738" };

async function guessWrong(account: TestAccount, device: CreatedDevice, headers = {}) {
  return gqlRequest(
    stack.url,
    ENABLE,
    { input: { userName: "root", serialNumber: device.serialNumber, ...WRONG } },
    account.rootToken,
    headers,
  );
}

/** Every form in which a secret of this test could leak. */
function secretsOf(device: CreatedDevice): RegExp[] {
  const exact = (text: string) => new RegExp(`(?<![\\w.])${text}(?![\\w.])`);
  return [device.seed, WRONG.authenticationCode1, WRONG.authenticationCode2].map(exact);
}

describe("verification metrics", () => {
  it("count outcomes and attempt-limit refusals on the gateway and on the worker", async () => {
    const account = await createTestAccount(stack);
    const device = await createDevice(stack, account.rootToken, "metered");
    const gatewayBefore = await scrape(gatewayMetricsUrl());
    const workerBefore = await scrape(workerMetricsUrl);

    // Three wrong pairs spend the (device, caller) budget; the fourth is refused by it.
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push(errorCode(await guessWrong(account, device)));
    expect(codes).toEqual([
      "INVALID_AUTHENTICATION_CODE",
      "INVALID_AUTHENTICATION_CODE",
      "INVALID_AUTHENTICATION_CODE",
      "RATE_LIMITED",
    ]);

    const gateway = await scrape(gatewayMetricsUrl());
    const worker = await scrape(workerMetricsUrl);
    const rise = (before: string, after: string, name: string, labels: Record<string, string>) =>
      sample(after, name, labels) - sample(before, name, labels);

    expect(
      rise(gatewayBefore, gateway, "mfa_gateway_verifications_total", {
        mode: "enrol",
        outcome: "INVALID",
      }),
    ).toBe(3);
    expect(
      rise(gatewayBefore, gateway, "mfa_gateway_verifications_total", {
        mode: "enrol",
        outcome: "THROTTLED",
      }),
    ).toBe(1);
    expect(
      rise(gatewayBefore, gateway, "mfa_gateway_attempt_limit_refusals_total", { mode: "enrol" }),
    ).toBe(1);
    expect(
      rise(gatewayBefore, gateway, "mfa_gateway_worker_call_duration_seconds_count", {
        op: "verify",
        result: "ok",
      }),
    ).toBe(4);
    expect(
      rise(gatewayBefore, gateway, "mfa_gateway_graphql_request_duration_seconds_count", {
        operation: "enableMfaDevice",
        type: "mutation",
        outcome: "INVALID_AUTHENTICATION_CODE",
      }),
    ).toBe(3);
    expect(
      rise(gatewayBefore, gateway, "mfa_gateway_graphql_request_duration_seconds_count", {
        operation: "enableMfaDevice",
        outcome: "RATE_LIMITED",
      }),
    ).toBe(1);

    expect(
      rise(workerBefore, worker, "mfa_worker_verifications_total", {
        mode: "enrol",
        outcome: "INVALID",
      }),
    ).toBe(3);
    expect(
      rise(workerBefore, worker, "mfa_worker_verifications_total", {
        mode: "enrol",
        outcome: "THROTTLED",
      }),
    ).toBe(1);
    expect(
      rise(workerBefore, worker, "mfa_worker_attempt_limit_refusals_total", { mode: "enrol" }),
    ).toBe(1);
    expect(rise(workerBefore, worker, "mfa_worker_request_seconds_count", { op: "verify" })).toBe(
      4,
    );
    expect(
      rise(workerBefore, worker, "mfa_worker_requests_total", { op: "verify", outcome: "ok" }),
    ).toBe(4);

    for (const secret of secretsOf(device)) {
      expect(gateway).not.toMatch(secret);
      expect(worker).not.toMatch(secret);
      expect(stack.logs.join("\n")).not.toMatch(secret);
    }
  });

  it("measure how far devices' clocks are: the drift of accepted codes, the offset of skewed ones", async () => {
    const account = await createTestAccount(stack);
    const enable = async (userName: string, pairAt: (seed: string) => object) => {
      await createTestUser(stack, account.rootToken, userName);
      const device = await createDevice(stack, account.rootToken, `${userName}-phone`);
      const input = { userName, serialNumber: device.serialNumber, ...pairAt(device.seed) };
      return stack.gql(ENABLE_DEVICE, { input }, account.rootToken);
    };
    const before = await scrape(gatewayMetricsUrl());
    const now = await awayFromStepEdge(stack, 5);
    // Eight steps slow: accepted, with a drift of -7 (the device showed now-7 last).
    ok(await enable("slow", (seed) => codePair(seed, now - 8)));
    // Sixteen slow: past the enrolment window, answered CLOCK_SKEW.
    const far = await enable("far", (seed) => codePair(seed, now - 16));
    expect(far.errors![0]!.extensions).toMatchObject({ reason: "CLOCK_SKEW", offsetSteps: -15 });

    const after = await scrape(gatewayMetricsUrl());
    const rise = (outcome: string, le: string) => {
      const labels = { mode: "enrol", outcome, le };
      const name = "mfa_gateway_device_clock_offset_steps_bucket";
      return sample(after, name, labels) - sample(before, name, labels);
    };
    expect([rise("OK", "5"), rise("OK", "10")]).toEqual([0, 1]);
    expect([rise("CLOCK_SKEW", "10"), rise("CLOCK_SKEW", "20")]).toEqual([0, 1]);
  });

  it("count refusals by the endpoint's limits", async () => {
    const before = sample(
      await scrape(gatewayMetricsUrl()),
      "mfa_gateway_operation_refusals_total",
      { limit: "ALIASES" },
    );
    const aliases = Array.from({ length: 11 }, (_, i) => `a${i}: __typename`).join(" ");
    expect(errorCode(await stack.gql(`{ ${aliases} }`))).toBe("BAD_USER_INPUT");
    const after = sample(
      await scrape(gatewayMetricsUrl()),
      "mfa_gateway_operation_refusals_total",
      { limit: "ALIASES" },
    );
    expect(after - before).toBe(1);
  });

  it("label operations by their first root field, so invented operation names take no series", async () => {
    for (let i = 0; i < 105; i++)
      await stack.gql(`query Invented${i}_${"x".repeat(500)} { __typename }`);
    await stack.gql(
      `mutation Mine { signIn(input: { email: "nobody@example.com", password: "x" }) { status } }`,
    );
    const text = await scrape(gatewayMetricsUrl());
    const operations = new Set(
      [
        ...text.matchAll(
          /^mfa_gateway_graphql_request_duration_seconds_count\{[^}]*operation="([^"]+)"/gm,
        ),
      ].map((m) => m[1]),
    );
    expect(operations.has("__typename")).toBe(true);
    expect(operations.has("signIn")).toBe(true);
    expect([...operations].filter((name) => name!.startsWith("Invented"))).toEqual([]);
    expect(operations.has("Mine")).toBe(false);
  });
});

describe("request ids", () => {
  const lines = () =>
    stack.logs.map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        return {};
      }
    });

  it("carry a caller's x-request-id into the gateway's and the worker's log lines", async () => {
    const account = await createTestAccount(stack);
    const device = await createDevice(stack, account.rootToken, "traced");
    const requestId = `test-${randomUUID()}`;
    const res = await guessWrong(account, device, { "x-request-id": requestId });
    expect(res.headers.get("x-request-id")).toBe(requestId);

    const gatewayLine = lines().find((l) => l.name === "gateway" && l.requestId === requestId);
    expect(gatewayLine).toMatchObject({
      msg: "graphql request",
      operationName: "EnableWithWrongCodes",
      outcome: "INVALID_AUTHENTICATION_CODE",
    });
    await expect
      .poll(() => lines().find((l) => l.name === "worker" && l.trace === requestId))
      .toMatchObject({ op: "verify", outcome: "ok", msg: "request answered" });
    for (const secret of secretsOf(device)) expect(stack.logs.join("\n")).not.toMatch(secret);
  });

  it("replace an id that is not a short token with one of the gateway's own", async () => {
    for (const bad of ["has spaces in it", "x".repeat(65), "semi;colon"]) {
      const res = await stack.gql("{ __typename }", {}, undefined, { "x-request-id": bad });
      const assigned = res.headers.get("x-request-id");
      expect(assigned).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

describe("queue gauges", () => {
  it("report the request stream's depth and the live workers", async () => {
    let text = await scrape(gatewayMetricsUrl());
    expect(sample(text, "mfa_workers_live")).toBe(1);
    expect(sample(text, "mfa_worker_queue_length")).toBe(0);
    expect(sample(text, "mfa_worker_queue_pending")).toBe(0);

    // With the worker gone, a request waits in the stream until its caller gives up.
    await worker.stop();
    const client = createWorkerClient({
      redis: stack.redis as RedisConnection,
      prefix: stack.prefix,
    });
    await expect(client.call({ op: "ping" }, { deadlineMs: 200 })).rejects.toBeInstanceOf(
      WorkerUnavailableError,
    );
    await client.close();
    text = await scrape(gatewayMetricsUrl());
    expect(sample(text, "mfa_workers_live")).toBe(0);
    expect(sample(text, "mfa_worker_queue_length")).toBe(1);
  });
});
