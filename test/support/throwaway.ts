/**
 * Throwaway services for fault and clock tests, so those tests never touch the machine's shared
 * PostgreSQL and Redis: a redis-server child process on a spare port (optionally with a
 * sped-up wall clock), a PostgreSQL cluster of its own in a temp dir, and auth workers as child
 * processes running the real worker (worker/main.ts), which a test may SIGKILL.
 *
 * Everything started here registers itself in `cleanups`; call `cleanUpAll()` in afterAll.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chownSync, closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { Client } from "pg";
import { freePort } from "../../scripts/free-port";

const ROOT = path.resolve(__dirname, "../..");
const PG_BIN = "/usr/lib/postgresql/15/bin";

const cleanups: (() => Promise<void> | void)[] = [];

/** Runs every registered cleanup, last first, and never throws. */
export async function cleanUpAll(): Promise<void> {
  while (cleanups.length) {
    try {
      await cleanups.pop()!();
    } catch (error) {
      console.error("cleanup failed:", error);
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

async function killAndWait(child: ChildProcess, signal: NodeJS.Signals = "SIGKILL") {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = exited(child);
  child.kill(signal);
  await done;
}

// ---------------------------------------------------------------------------------------------
// Redis

export interface RedisServer {
  port: number;
  url: string;
  /** Kills the server with SIGKILL; with no persistence every key is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
}

/** Builds test/support/fast-clock.c once per process; see that file for why not libfaketime. */
let fastClockLibrary: string | undefined;
export function fastClockLib(): string {
  if (fastClockLibrary) return fastClockLibrary;
  const dir = mkdtempSync(path.join(tmpdir(), "vmfa-fastclock-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, "fast-clock.so");
  execFileSync("gcc", ["-shared", "-fPIC", "-O2", "-o", out, path.join(__dirname, "fast-clock.c")]);
  fastClockLibrary = out;
  return out;
}

/** A wall-clock offset a test controls: `advance` jumps a fast-clock Redis forward at once. */
export interface ClockControl {
  file: string;
  /** Seconds added to the real wall clock. */
  offsetSeconds: number;
  advance(seconds: number): void;
}

export function createClockControl(): ClockControl {
  const dir = mkdtempSync(path.join(tmpdir(), "vmfa-clock-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "offset");
  const write = (seconds: number) => {
    const buffer = Buffer.alloc(8);
    buffer.writeDoubleLE(seconds);
    // Written in place, never truncated: the server maps these 8 bytes.
    const fd = openSync(file, "a+");
    closeSync(fd);
    const rw = openSync(file, "r+");
    writeSync(rw, buffer, 0, 8, 0);
    closeSync(rw);
  };
  write(0);
  const control: ClockControl = {
    file,
    offsetSeconds: 0,
    advance(seconds) {
      control.offsetSeconds += seconds;
      write(control.offsetSeconds);
    },
  };
  return control;
}

/**
 * A redis-server on a spare port without persistence. With `clockSpeed`, its wall clock (TIME,
 * key expiry, Lua's TIME) runs that many times faster than real time; with `clock`, it is
 * offset by what the test sets (see fast-clock.c).
 */
export async function startRedisServer(
  options: { clockSpeed?: number; clock?: ClockControl } = {},
) {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const env =
    options.clockSpeed || options.clock
      ? {
          ...process.env,
          LD_PRELOAD: fastClockLib(),
          FAST_CLOCK_SPEED: String(options.clockSpeed ?? 1),
          ...(options.clock ? { FAST_CLOCK_OFFSET_FILE: options.clock.file } : {}),
        }
      : process.env;
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async kill() {
      if (child) await killAndWait(child);
      child = undefined;
    },
    async start() {
      child = spawn(
        "redis-server",
        ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        { stdio: "ignore", env },
      );
      for (let i = 0; i < 100; i++) {
        const pong = spawnSync("redis-cli", ["-p", String(port), "ping"]).stdout?.toString();
        if (pong?.trim() === "PONG") return;
        await sleep(50);
      }
      throw new Error(`redis-server on ${port} did not start`);
    },
  };
  cleanups.push(() => server.kill());
  await server.start();
  return server;
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

export interface PostgresServer {
  port: number;
  url: string;
  stop(mode?: "fast" | "immediate"): void;
  start(): void;
}

const asPostgres = (args: string[]) =>
  execFileSync("runuser", ["-u", "postgres", "--", ...args], { stdio: "pipe" });

/**
 * A PostgreSQL 15 cluster of its own in a temp dir (initdb as the postgres user, which initdb
 * needs), with the product's migrations applied. Removed again by cleanUpAll.
 */
export async function startPostgres(): Promise<PostgresServer> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), "vmfa-pg-"));
  const data = path.join(dir, "data");
  const { uid, gid } = postgresIds();
  chownSync(dir, uid, gid);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  asPostgres([`${PG_BIN}/initdb`, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  const server: PostgresServer = {
    port,
    url: `postgresql://postgres@127.0.0.1:${port}/vmfa`,
    start() {
      asPostgres([
        `${PG_BIN}/pg_ctl`,
        "-D",
        data,
        "-l",
        path.join(dir, "log"),
        "-w",
        "-o",
        `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50`,
        "start",
      ]);
    },
    stop(mode = "fast") {
      try {
        asPostgres([`${PG_BIN}/pg_ctl`, "-D", data, "-m", mode, "-w", "stop"]);
      } catch {
        // already stopped
      }
    },
  };
  cleanups.push(() => server.stop("immediate"));
  server.start();
  const admin = new Client({
    connectionString: `postgresql://postgres@127.0.0.1:${port}/postgres`,
  });
  await admin.connect();
  await admin.query("CREATE DATABASE vmfa");
  await admin.end();
  execFileSync("npx", ["prisma", "migrate", "deploy"], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: server.url },
    stdio: "pipe",
  });
  return server;
}

function postgresIds() {
  const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
  return { uid, gid };
}

// ---------------------------------------------------------------------------------------------
// Workers as child processes

export interface ChildWorker {
  pid: number;
  metricsPort: number;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Runs the real auth worker (worker/main.ts: config, keyring, handlers, Redis Streams consumer,
 * /metrics) in a child process and waits until it says it is running. Its log lines go to `logs`.
 */
export async function spawnWorker(options: {
  redisUrl: string;
  prefix: string;
  keyringSpec: string;
  logs: string[];
  env?: Record<string, string>;
}): Promise<ChildWorker> {
  const metricsPort = await freePort();
  const child = spawn(
    process.execPath,
    ["--require", "tsx/cjs", path.join(ROOT, "worker/main.ts")],
    {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        NODE_ENV: "test",
        LOG_LEVEL: "info",
        REDIS_URL: options.redisUrl,
        REDIS_PREFIX: options.prefix,
        SEAL_KEYS: options.keyringSpec,
        WORKER_METRICS_PORT: String(metricsPort),
        WORKER_CLAIM_IDLE_MS: "500",
        ...options.env,
      },
    },
  );
  cleanups.push(() => killAndWait(child));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("child worker did not start")), 30_000);
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on("line", (line) => {
        options.logs.push(line);
        if (line.includes("auth worker running")) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`child worker exited with ${code} while starting`));
    });
  });
  await ready;
  return {
    pid: child.pid!,
    metricsPort,
    exited: exited(child),
    kill: (signal = "SIGKILL") => killAndWait(child, signal),
  };
}
