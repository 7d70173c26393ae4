/**
 * Soak: a mixed load (sign-ins with MFA, enrolments, listings) for a configurable time against
 * the product, reporting throughput, errors and memory (RSS of the gateway and of each worker)
 * every interval, and whether memory stayed flat after warm-up.
 *
 *   npm run soak                          # 10 minutes, starts its own gateway and 2 workers
 *   SOAK_MINUTES=2 SOAK_CLIENTS=16 npm run soak
 *   SOAK_URL=http://127.0.0.1:4000/graphql SOAK_PIDS=123,456 npm run soak   # a running product
 *
 * Started by itself it uses the database `virtual_mfa_soak` (created and migrated when missing)
 * on the local PostgreSQL, a Redis key prefix of its own on the local Redis, and a fresh sealing
 * key; it stops what it started at the end. Against a running product (SOAK_URL), the gateway
 * must trust X-Forwarded-For (TRUST_PROXY=1) so each simulated client is its own source, and
 * RSS is sampled only for the process ids in SOAK_PIDS.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { base32Decode } from "../worker/totp/base32";
import { hotp, stepAt } from "../worker/totp/hotp";
import { DEFAULT_POLICY } from "../worker/verify/policy";
import { freePort } from "./free-port";

const env = process.env;
const MINUTES = Number(env.SOAK_MINUTES ?? 10);
const CLIENTS = Number(env.SOAK_CLIENTS ?? 8);
const INTERVAL_S = Number(env.SOAK_INTERVAL_SECONDS ?? 30);
const WARMUP_S = Number(env.SOAK_WARMUP_SECONDS ?? Math.min(120, (MINUTES * 60) / 5));
const WORKERS = Number(env.SOAK_WORKERS ?? 2);
const REPORT = env.SOAK_REPORT;
const PASSWORD = "soak password, long enough";
const ROOT = path.resolve(__dirname, "../..");

interface Proc {
  name: string;
  pid: number;
  child?: ChildProcess;
}

function rssMb(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
    return kb ? Math.round(Number(kb) / 102.4) / 10 : undefined;
  } catch {
    return undefined;
  }
}

const stepNow = () => stepAt(Date.now(), 30);
/** The production policy's loginRecentreSeconds (worker/verify/policy.ts), in 30 s steps. */
const RECENTRE_GAP_STEPS = DEFAULT_POLICY.loginRecentreSeconds / 30;
const totp = (seed: Buffer, step: number) => hotp(seed, step, "SHA1", 6);

interface Gql {
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

class Stats {
  ops = 0;
  byKind = new Map<string, number>();
  errors = new Map<string, number>();
  latencies: number[] = [];
  count(kind: string) {
    this.ops++;
    this.byKind.set(kind, (this.byKind.get(kind) ?? 0) + 1);
  }
  error(code: string) {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }
}

let interval = new Stats();
const total = new Stats();

async function gql(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  token?: string,
  source?: string,
): Promise<Gql> {
  const started = performance.now();
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(source ? { "x-forwarded-for": source } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as Gql;
  interval.latencies.push(performance.now() - started);
  if (body.errors?.length) {
    const code = body.errors[0]!.extensions?.code ?? "NO_CODE";
    interval.error(code);
    total.error(code);
  }
  return body;
}

interface Device {
  userName: string;
  seed: Buffer;
  lastStep: number;
  /**
   * The drift the product has stored. A login re-centres it on its own step only when the
   * device's last acceptance is an hour old or more (the worker's loginRecentreSeconds).
   */
  drift: number;
}

/** One simulated tenant: an account, its users with devices, and a source address. */
async function client(url: string, index: number, until: number) {
  const source = `203.0.113.${(index % 250) + 1}`;
  const created = await gql(
    url,
    `mutation($i: CreateAccountInput!) { createAccount(input: $i) { account { accountId } session { token } } }`,
    {
      i: { email: `soak-${randomUUID()}@example.com`, phone: "+14155550100", password: PASSWORD },
    },
    undefined,
    source,
  );
  const account = created.data?.createAccount as
    { account: { accountId: string }; session: { token: string } } | undefined;
  if (!account) throw new Error(`createAccount failed: ${JSON.stringify(created.errors)}`);
  const accountId = account.account.accountId;
  const root = account.session.token;
  const devices: Device[] = [];

  const enrol = async () => {
    const userName = `u${devices.length}-${randomBytes(3).toString("hex")}`;
    await gql(
      url,
      `mutation($i: CreateUserInput!) { createUser(input: $i) { arn } }`,
      { i: { userName, password: PASSWORD } },
      root,
      source,
    );
    const made = await gql(
      url,
      `mutation($i: CreateVirtualMfaDeviceInput!) { createVirtualMfaDevice(input: $i) { virtualMfaDevice { serialNumber } base32StringSeed } }`,
      { i: { virtualMfaDeviceName: userName } },
      root,
      source,
    );
    const device = made.data?.createVirtualMfaDevice as
      { virtualMfaDevice: { serialNumber: string }; base32StringSeed: string } | undefined;
    if (!device) return;
    const seed = base32Decode(device.base32StringSeed);
    const step = stepNow();
    const enabled = await gql(
      url,
      `mutation($i: EnableMfaDeviceInput!) { enableMfaDevice(input: $i) { enableDate } }`,
      {
        i: {
          userName,
          serialNumber: device.virtualMfaDevice.serialNumber,
          authenticationCode1: totp(seed, step - 3),
          authenticationCode2: totp(seed, step - 2),
        },
      },
      root,
      source,
    );
    if (enabled.data?.enableMfaDevice)
      devices.push({ userName, seed, lastStep: step - 2, drift: step - 2 - stepNow() });
    interval.count("enrol");
    total.count("enrol");
  };

  const signIn = async (device: Device) => {
    const centre = stepNow() + device.drift;
    // Inside the ±1 window around now + drift, above the watermark.
    const use = Math.max(device.lastStep + 1, centre);
    if (use > centre + 1) return false;
    const lastAcceptedAt = device.lastStep - device.drift;
    if (stepNow() - lastAcceptedAt >= RECENTRE_GAP_STEPS) device.drift = use - stepNow();
    device.lastStep = use;
    const first = await gql(
      url,
      `mutation($i: SignInInput!) { signIn(input: $i) { status challenge { challenge } } }`,
      { i: { account: accountId, userName: device.userName, password: PASSWORD } },
      undefined,
      source,
    );
    const challenge = (first.data?.signIn as { challenge?: { challenge: string } } | undefined)
      ?.challenge?.challenge;
    if (!challenge) return true;
    await gql(
      url,
      `mutation($i: AnswerMfaChallengeInput!) { answerMfaChallenge(input: $i) { session { mfaAuthenticated } } }`,
      { i: { challenge, code: totp(device.seed, use) } },
      undefined,
      source,
    );
    interval.count("signIn");
    total.count("signIn");
    return true;
  };

  const list = async () => {
    const queries = [
      `query { users(first: 50) { edges { node { userName arn } } pageInfo { hasNextPage endCursor } } }`,
      `query { virtualMfaDevices(assignmentStatus: ANY, first: 50) { edges { node { serialNumber enableDate } } pageInfo { hasNextPage } } }`,
      `query { mfaDevices(first: 10) { edges { node { serialNumber } } } }`,
    ];
    await gql(url, queries[Math.floor(Math.random() * queries.length)]!, {}, root, source);
    interval.count("list");
    total.count("list");
  };

  for (let i = 0; i < 3; i++) await enrol();
  while (Date.now() < until) {
    const roll = Math.random();
    try {
      if (roll < 0.55) {
        const fresh = devices.find((d) => d.lastStep < stepNow() + d.drift);
        if (!fresh || !(await signIn(fresh))) await list();
      } else if (roll < 0.65 && devices.length < 100) {
        await enrol();
      } else {
        await list();
      }
    } catch (error) {
      interval.error(`CLIENT:${(error as Error).message.slice(0, 40)}`);
      total.error(`CLIENT:${(error as Error).message.slice(0, 40)}`);
    }
  }
}

async function waitForUrl(url: string, child: ChildProcess) {
  for (let i = 0; i < 120; i++) {
    if (child.exitCode !== null) throw new Error("gateway exited while starting");
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: "{ __typename }" }),
      });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error("gateway did not start");
}

async function startProduct(): Promise<{ url: string; procs: Proc[]; stop(): Promise<void> }> {
  const port = await freePort();
  const prefix = `soak-${randomBytes(4).toString("hex")}`;
  const common = {
    ...env,
    NODE_ENV: "development",
    LOG_LEVEL: env.SOAK_LOG_LEVEL ?? "warn",
    DATABASE_URL: env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/virtual_mfa_soak",
    REDIS_URL: env.REDIS_URL ?? "redis://127.0.0.1:6379",
    REDIS_PREFIX: prefix,
  };
  for (const [cmd, args] of [
    ["node", [path.join(ROOT, "dist/scripts/ensure-database.js")]],
    ["npx", ["prisma", "migrate", "deploy"]],
  ] as const) {
    const run = spawnSync(cmd, args, { cwd: ROOT, env: common, stdio: "inherit" });
    if (run.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed`);
  }
  const keys = `soak:${randomBytes(32).toString("base64")}`;
  const procs: Proc[] = [];
  const children: ChildProcess[] = [];
  for (let i = 0; i < WORKERS; i++) {
    const child = spawn("node", [path.join(ROOT, "dist/worker/main.js")], {
      cwd: ROOT,
      env: { ...common, SEAL_KEYS: keys, WORKER_METRICS_PORT: "0" },
      stdio: ["ignore", "ignore", "inherit"],
    });
    children.push(child);
    procs.push({ name: `worker${i + 1}`, pid: child.pid!, child });
  }
  // With the heap cap and malloc arenas `npm start` gives it (scripts/start.sh), so the soak
  // measures what runs.
  const heapCap = `--max-old-space-size=${env.GATEWAY_HEAP_MB ?? 128}`;
  const gateway = spawn("node", [heapCap, path.join(ROOT, "dist/src/main.js")], {
    cwd: ROOT,
    env: {
      ...common,
      PORT: String(port),
      TRUST_PROXY: "1",
      MALLOC_ARENA_MAX: env.MALLOC_ARENA_MAX ?? "2",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  children.push(gateway);
  procs.unshift({ name: "gateway", pid: gateway.pid!, child: gateway });
  const url = `http://127.0.0.1:${port}/graphql`;
  await waitForUrl(url, gateway);
  return {
    url,
    procs,
    async stop() {
      await Promise.all(
        children.map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve();
              child.once("exit", () => resolve());
              child.kill("SIGTERM");
              setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
            }),
        ),
      );
      // Leave no Redis keys of this run behind (the database keeps its rows for inspection).
      spawnSync(
        "sh",
        [
          "-c",
          `redis-cli -u "$REDIS_URL" --scan --pattern '${prefix}:*' | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null`,
        ],
        { env: common },
      );
    },
  };
}

interface Sample {
  t: number;
  ops: number;
  opsPerSecond: number;
  p50: number;
  p99: number;
  errors: Record<string, number>;
  rss: Record<string, number | undefined>;
}

function percentile(values: number[], p: number): number {
  if (!values.length) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]! * 10) / 10;
}

async function main() {
  const started = Date.now();
  const until = started + MINUTES * 60_000;
  const product = env.SOAK_URL
    ? {
        url: env.SOAK_URL,
        procs: (env.SOAK_PIDS ?? "")
          .split(",")
          .filter(Boolean)
          .map((pid, i) => ({ name: `pid${i}:${pid}`, pid: Number(pid) })),
        stop: async () => {},
      }
    : await startProduct();
  console.log(
    `soak: ${MINUTES} min, ${CLIENTS} clients, sampling every ${INTERVAL_S} s, against ${product.url}`,
  );
  const samples: Sample[] = [];
  const sample = () => {
    const current = interval;
    interval = new Stats();
    const s: Sample = {
      t: Math.round((Date.now() - started) / 1000),
      ops: current.ops,
      opsPerSecond: Math.round((current.ops / INTERVAL_S) * 10) / 10,
      p50: percentile(current.latencies, 0.5),
      p99: percentile(current.latencies, 0.99),
      errors: Object.fromEntries(current.errors),
      rss: Object.fromEntries(product.procs.map((p) => [p.name, rssMb(p.pid)])),
    };
    samples.push(s);
    console.log(
      `t=${s.t}s ops=${s.ops} (${s.opsPerSecond}/s) http p50=${s.p50}ms p99=${s.p99}ms ` +
        `errors=${JSON.stringify(s.errors)} rssMB=${JSON.stringify(s.rss)}`,
    );
  };
  const rssAtStart = Object.fromEntries(product.procs.map((p) => [p.name, rssMb(p.pid)]));
  const timer = setInterval(sample, INTERVAL_S * 1000);
  let failed: unknown;
  try {
    await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(product.url, i, until)));
  } catch (error) {
    failed = error;
  } finally {
    clearInterval(timer);
    sample();
  }
  const rssAtEnd = Object.fromEntries(product.procs.map((p) => [p.name, rssMb(p.pid)]));
  await product.stop();

  const afterWarmup = samples.filter((s) => s.t >= WARMUP_S);
  const flat: Record<string, string> = {};
  for (const p of product.procs) {
    const values = afterWarmup
      .map((s) => s.rss[p.name])
      .filter((v): v is number => v !== undefined);
    if (values.length < 2) continue;
    const first = values[0]!;
    const last = values[values.length - 1]!;
    const max = Math.max(...values);
    flat[p.name] =
      `${first} → ${last} MB (max ${max}, ${last - first >= 0 ? "+" : ""}${Math.round(((last - first) / first) * 1000) / 10}%)`;
  }
  const seconds = (Date.now() - started) / 1000;
  const errorCount = [...total.errors.values()].reduce((a, b) => a + b, 0);
  const summary = {
    durationSeconds: Math.round(seconds),
    clients: CLIENTS,
    workers: env.SOAK_URL ? "external" : WORKERS,
    operations: total.ops,
    byKind: Object.fromEntries(total.byKind),
    opsPerSecond: Math.round((total.ops / seconds) * 10) / 10,
    errors: Object.fromEntries(total.errors),
    errorCount,
    rssAtStartMB: rssAtStart,
    rssAtEndMB: rssAtEnd,
    rssAfterWarmup: flat,
  };
  console.log("soak summary:", JSON.stringify(summary, null, 2));
  if (REPORT) writeFileSync(REPORT, JSON.stringify({ summary, samples }, null, 2));
  if (failed) throw failed;
}

main().catch((error) => {
  console.error("soak failed:", error instanceof Error ? error.message : error);
  process.exit(1);
});
