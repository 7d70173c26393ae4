import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { createCluster } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeviceState } from "../../worker/protocol";
import { createScriptRunner, type ScriptRunner } from "../../worker/lua/scripts";
import { provisionSeed } from "../../worker/provision";
import { generateKeyringSpec, parseKeyring } from "../../worker/seal/keyring";
import { base32Decode } from "../../worker/totp/base32";
import { hotp } from "../../worker/totp/hotp";
import { createVerifier, type VerifyRequest } from "../../worker/verify/verifier";
import pino from "pino";
import { PasswordAttemptGuard } from "../../src/auth/password-attempts";
import { RedisBudgets } from "../../src/common/redis-budgets";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** True when nothing listens on `port` (checked by binding it briefly). */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
      .once("error", () => resolve(false))
      .listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** Random ports whose cluster-bus twins (port + 10000) are free too, so parallel runs don't clash. */
async function freeClusterPorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    if (!ports.includes(port) && (await portIsFree(port)) && (await portIsFree(port + 10_000)))
      ports.push(port);
  }
  return ports;
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const dir = mkdtempSync(path.join(tmpdir(), "vmfa-cluster-"));
const servers: ChildProcess[] = [];
let ports: number[] = [];
let cluster: ReturnType<typeof createCluster>;

beforeAll(async () => {
  ports = await freeClusterPorts(3);
  for (const port of ports) {
    const server = spawn(
      "redis-server",
      [
        ...["--port", String(port), "--bind", "127.0.0.1", "--dir", dir],
        ...[
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          path.join(dir, `nodes-${port}.conf`),
        ],
        ...["--save", "", "--appendonly", "no", "--daemonize", "no"],
      ],
      { stdio: "ignore" },
    );
    servers.push(server);
  }
  for (const port of ports) {
    await waitFor(`redis on ${port}`, async () =>
      (await run("redis-cli", ["-p", String(port), "ping"])).stdout.includes("PONG"),
    );
  }
  const addresses = ports.map((port) => `127.0.0.1:${port}`);
  await run("redis-cli", [
    "--cluster",
    "create",
    ...addresses,
    "--cluster-replicas",
    "0",
    "--cluster-yes",
  ]);
  for (const port of ports) {
    await waitFor(`cluster_state:ok on ${port}`, async () =>
      (await run("redis-cli", ["-p", String(port), "cluster", "info"])).stdout.includes(
        "cluster_state:ok",
      ),
    );
  }
  cluster = createCluster({
    rootNodes: ports.map((port) => ({ url: `redis://127.0.0.1:${port}` })),
  });
  await cluster.connect();
});

afterAll(async () => {
  await cluster?.close().catch(() => undefined);
  // Only the processes this file started, by their own handles.
  await Promise.all(
    servers.map(
      (server) =>
        new Promise<void>((resolve) => {
          if (server.exitCode !== null) return resolve();
          server.once("exit", () => resolve());
          server.kill("SIGTERM");
        }),
    ),
  );
  rmSync(dir, { recursive: true, force: true });
});

const keyring = parseKeyring(generateKeyringSpec("cluster"));

/** A verifier on the cluster with its own key prefix; the whole cluster is discarded afterwards. */
function setup(policy = {}, prefix = `test-cluster-${randomUUID()}`, scripts?: ScriptRunner) {
  const verifier = createVerifier({
    scripts: scripts ?? createScriptRunner(cluster),
    keyring,
    prefix,
    policy,
  });
  return { prefix, verifier };
}

/**
 * Scripts on the cluster that hold back every settlement of a source budget (a call on an
 * `{s:…}` key other than a claim) until `deliver()`, so a test decides when it lands.
 */
function holdingSettlements() {
  const runner = createScriptRunner(cluster);
  const held: (() => Promise<unknown>)[] = [];
  const scripts: ScriptRunner = {
    singleNode: runner.singleNode,
    run(script, keys, args) {
      if (!keys[0]!.includes("{s:") || args[0] === "claim") return runner.run(script, keys, args);
      return new Promise((resolve, reject) =>
        held.push(() => runner.run(script, keys, args).then(resolve, reject)),
      );
    },
  };
  return {
    scripts,
    held: () => held.length,
    deliver: () => Promise.all(held.splice(0).map((send) => send())),
  };
}

function device() {
  const deviceId = randomUUID();
  const accountId = "123456789012";
  const provisioned = provisionSeed(keyring, { accountId, deviceId });
  const seed = base32Decode(provisioned.base32Seed);
  const state: DeviceState = {
    deviceId,
    accountId,
    sealedSeed: provisioned.sealedSeed,
    keyId: provisioned.keyId,
    algorithm: "SHA1",
    digits: 6,
    period: 30,
    drift: 0,
    lastStep: null,
  };
  return { state, code: (step: number) => hotp(seed, step, "SHA1", 6) };
}

const login = (state: DeviceState, code1: string, source = "203.0.113.9"): VerifyRequest => ({
  op: "verify",
  mode: "login",
  device: state,
  code1,
  source,
});

async function clusterStep(): Promise<number> {
  const node = await cluster.nodeClient(cluster.masters[0]!);
  const [seconds] = await node.time();
  return Math.floor(Number(seconds) / 30);
}

async function mastersHoldingKeys(prefix: string): Promise<number> {
  let holding = 0;
  for (const master of cluster.masters) {
    const node = await cluster.nodeClient(master);
    const keys = await node.keys(`${prefix}:*`);
    if (keys.length > 0) holding++;
  }
  return holding;
}

describe("on a three-master Redis Cluster", () => {
  it("accepts each device's code once and refuses its replay, across several slots and nodes", async () => {
    const { prefix, verifier } = setup();
    const devices = Array.from({ length: 12 }, device);
    const now = await clusterStep();
    for (const d of devices) {
      expect(await verifier.verify(login(d.state, d.code(now)), randomUUID())).toMatchObject({
        outcome: "OK",
      });
      expect(await verifier.verify(login(d.state, d.code(now)), randomUUID())).toEqual({
        outcome: "REPLAYED",
      });
    }
    expect(await mastersHoldingKeys(prefix)).toBeGreaterThanOrEqual(2);
  });

  it("accepts exactly one of 50 concurrent verifications of the same code", async () => {
    const { verifier } = setup();
    const d = device();
    const code = d.code(await clusterStep());
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        verifier.verify(login(d.state, code, `198.51.100.${i}`), randomUUID()),
      ),
    );
    expect(results.filter((r) => r.outcome === "OK")).toHaveLength(1);
  });

  it("throttles a source spraying many devices, with its budget in a slot of its own", async () => {
    const { verifier } = setup({ sourceBudget: 3, sourceWindowSeconds: 60 });
    const now = await clusterStep();
    const outcomes = [];
    for (const d of Array.from({ length: 5 }, device)) {
      // A code for a step far outside every window is certainly a failed guess.
      outcomes.push(
        (await verifier.verify(login(d.state, d.code(now - 500), "sprayer"), randomUUID())).outcome,
      );
    }
    expect(outcomes).toEqual(["INVALID", "INVALID", "INVALID", "THROTTLED", "THROTTLED"]);
  });

  it("checks at most sourceBudget of 20 concurrent wrong guesses from one source", async () => {
    const { verifier } = setup({ sourceBudget: 3, sourceWindowSeconds: 60 });
    const now = await clusterStep();
    const results = await Promise.all(
      Array.from({ length: 20 }, device).map((d) =>
        verifier.verify(login(d.state, d.code(now - 500), "sprayer"), randomUUID()),
      ),
    );
    const outcomes = results.map((r) => r.outcome);
    expect(outcomes.filter((o) => o === "INVALID")).toHaveLength(3);
    expect(outcomes.filter((o) => o === "THROTTLED")).toHaveLength(17);
  });

  it("counts only failed guesses against a source: a genuine code's claim is given back", async () => {
    const late = holdingSettlements();
    const { verifier } = setup(
      { sourceBudget: 1, sourceWindowSeconds: 60 },
      undefined,
      late.scripts,
    );
    const now = await clusterStep();
    const [first, second, third] = Array.from({ length: 3 }, device);
    const firstId = randomUUID();
    const accepted = await verifier.verify(login(first!.state, first!.code(now), "nat"), firstId);
    expect(accepted).toMatchObject({ outcome: "OK" });
    expect(late.held()).toBe(1);
    // Only a claim in flight fills the budget, and it settles within moments: retry in 1 s.
    expect(
      await verifier.verify(login(second!.state, second!.code(now), "nat"), randomUUID()),
    ).toEqual({ outcome: "THROTTLED", retryAfterSeconds: 1 });
    await late.deliver();
    // Released: the genuine code took nothing from the budget.
    expect(
      await verifier.verify(login(second!.state, second!.code(now), "nat"), randomUUID()),
    ).toMatchObject({ outcome: "OK" });
    await late.deliver();
    expect(
      await verifier.verify(login(third!.state, third!.code(now - 500), "nat"), randomUUID()),
    ).toEqual({ outcome: "INVALID" });
    await late.deliver();
    // Counted: the failure fills the budget for the rest of its window.
    const refused = await verifier.verify(
      login(third!.state, third!.code(now), "nat"),
      randomUUID(),
    );
    expect(refused).toMatchObject({ outcome: "THROTTLED" });
    if (refused.outcome === "THROTTLED") expect(refused.retryAfterSeconds).toBeGreaterThan(1);
    // A retried request still gets its first answer.
    expect(await verifier.verify(login(first!.state, first!.code(now), "nat"), firstId)).toEqual(
      accepted,
    );
  });

  it("never lets a claim given back after its window ended make room in the next window", async () => {
    const late = holdingSettlements();
    // Two verifiers share one source budget: the first's window lasts 1 s, so its claim ends
    // long before the second's 60 s window, which the late release must not enlarge.
    const { prefix, verifier: shortWindow } = setup(
      { sourceBudget: 2, sourceWindowSeconds: 1 },
      undefined,
      late.scripts,
    );
    const { verifier } = setup({ sourceBudget: 2, sourceWindowSeconds: 60 }, prefix);
    const now = await clusterStep();
    const [owner, ...others] = Array.from({ length: 4 }, device);
    expect(
      await shortWindow.verify(login(owner!.state, owner!.code(now), "nat"), randomUUID()),
    ).toMatchObject({ outcome: "OK" });
    expect(late.held()).toBe(1);
    await sleep(1_500);
    const guess = (d: (typeof others)[number]) =>
      verifier.verify(login(d.state, d.code(now - 500), "nat"), randomUUID());
    expect(await guess(others[0]!)).toEqual({ outcome: "INVALID" });
    expect(await guess(others[1]!)).toEqual({ outcome: "INVALID" });
    // The first claim's release lands in the second window; were it taken off that window's
    // count, this third guess would be checked.
    await late.deliver();
    expect(await guess(others[2]!)).toMatchObject({ outcome: "THROTTLED" });
  });

  it("runs the gateway's password budgets, whose keys fall in many slots, and refuses past the limit", async () => {
    const budgets = new RedisBudgets(
      cluster,
      `test-cluster-${randomUUID()}`,
      pino({ level: "silent" }),
    );
    const guard = new PasswordAttemptGuard(budgets, {
      perUserAndSource: 3,
      perSource: 100,
      windowSeconds: 60,
    });
    // Twenty users from twenty sources: their keys land on every node.
    for (let user = 0; user < 20; user++) {
      const source = `192.0.2.${user + 1}`;
      for (let guess = 0; guess < 3; guess++) {
        await (await guard.begin(`account:123456789012/user${user}`, source)).failed();
      }
      await expect(guard.begin(`account:123456789012/user${user}`, source)).rejects.toMatchObject({
        code: "RATE_LIMITED",
      });
    }
  });

  it("keeps working after every node forgets its scripts (NOSCRIPT falls back to EVAL)", async () => {
    const { verifier } = setup();
    const d = device();
    for (const master of cluster.masters) await (await cluster.nodeClient(master)).scriptFlush();
    const now = await clusterStep();
    expect(await verifier.verify(login(d.state, d.code(now)), randomUUID())).toMatchObject({
      outcome: "OK",
    });
  });
});
