/**
 * What one hop between processes costs on this machine: the CPU a woken process spends per
 * message, when messages come back to back and when they are spaced out.
 *
 * 1. Two bare Node processes echo one byte over TCP: the least a hop can cost in Node.
 * 2. The auth worker, as `npm start` runs it (`dist/worker/main.js`), answers `ping` through
 *    the Redis transport: one stream read, one answer, nothing else.
 *
 * The idle CPU of the woken process is measured first and subtracted. Every request in this
 * product crosses several such hops (gateway, PostgreSQL, Redis, worker), so their price sets
 * what the end-to-end figures can reach here (README "Not reached").
 *
 * Run after `npm run build`: node dist/bench/hop-cost.js   (REDIS_URL to override)
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { connect, createServer, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { createWorkerClient } from "../worker/client";
import { createClient } from "redis";
import { generateKeyringSpec } from "../worker/seal/keyring";
import { runLanes } from "./lib/lanes";
import { cpuSecondsOf as cpuSeconds, startProcess } from "./lib/processes";
import { deleteKeysWithPrefix } from "./lib/redis-keys";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const WINDOW_MS = 4000;
const ECHO_PORT = 4501;

interface Row {
  hop: string;
  spacing: string;
  messages: number;
  microseconds: number;
}

/** Sends `send()` every `gapMs` (0: back to back) for the window; CPU per message in `pid`. */
async function perMessage(
  pid: number,
  idleCpuPerMs: number,
  gapMs: number,
  send: () => Promise<unknown>,
): Promise<{ messages: number; microseconds: number }> {
  const cpuBefore = cpuSeconds(pid);
  const startedAt = performance.now();
  let messages = 0;
  if (gapMs === 0) {
    messages = (await runLanes(50, WINDOW_MS, send)).calls;
  } else {
    while (performance.now() - startedAt < WINDOW_MS) {
      await send();
      messages++;
      await sleep(gapMs);
    }
  }
  const elapsedMs = performance.now() - startedAt;
  const cpu = cpuSeconds(pid) - cpuBefore - (idleCpuPerMs * elapsedMs) / 1000;
  return { messages, microseconds: Math.max(0, (cpu * 1e6) / messages) };
}

async function idleCpuPerMs(pid: number): Promise<number> {
  const before = cpuSeconds(pid);
  await sleep(2000);
  return (cpuSeconds(pid) - before) / 2000;
}

async function echoRows(): Promise<Row[]> {
  const child: ChildProcess = fork(__filename, ["echo-server"], { stdio: "inherit" });
  await once(child, "message");
  const socket: Socket = connect(ECHO_PORT, "127.0.0.1");
  await once(socket, "connect");
  socket.setNoDelay(true);
  // One byte out, one back; lanes of one at a time share the socket in order.
  const waiting: (() => void)[] = [];
  socket.on("data", (data) => {
    for (let i = 0; i < data.length; i++) waiting.shift()?.();
  });
  const echo = () =>
    new Promise<void>((resolve) => {
      waiting.push(resolve);
      socket.write("x");
    });
  const idle = await idleCpuPerMs(child.pid!);
  const rows: Row[] = [];
  for (const gapMs of [0, 1, 10]) {
    const figures = await perMessage(child.pid!, idle, gapMs, echo);
    rows.push({ hop: "echo, two bare Node processes, TCP", spacing: spacing(gapMs), ...figures });
  }
  socket.destroy();
  child.kill();
  return rows;
}

async function workerRows(): Promise<Row[]> {
  const prefix = `hop-cost-${process.pid}`;
  const worker = startProcess("worker", "dist/worker/main.js", {
    NODE_ENV: "production",
    LOG_LEVEL: "warn",
    REDIS_URL,
    REDIS_PREFIX: prefix,
    SEAL_KEYS: generateKeyringSpec("bench"),
    WORKER_METRICS_PORT: "0",
  });
  const redis = createClient({ url: REDIS_URL });
  redis.on("error", () => undefined);
  await redis.connect();
  const client = createWorkerClient({ redis, prefix, deadlineMs: 5000 });
  const rows: Row[] = [];
  try {
    for (let tries = 0; ; tries++) {
      try {
        await client.ping();
        break;
      } catch (error) {
        if (tries > 20) throw error;
      }
    }
    const idle = await idleCpuPerMs(worker.child.pid!);
    for (const gapMs of [0, 2, 10, 50]) {
      const figures = await perMessage(worker.child.pid!, idle, gapMs, () => client.ping());
      rows.push({
        hop: "ping through Redis to the auth worker",
        spacing: spacing(gapMs),
        ...figures,
      });
    }
  } finally {
    await client.close();
    await worker.stop();
    await deleteKeysWithPrefix(redis, prefix);
    await redis.close();
  }
  return rows;
}

function spacing(gapMs: number): string {
  return gapMs === 0 ? "50 in flight" : `one, then ${gapMs} ms idle`;
}

async function main() {
  const rows = [...(await echoRows()), ...(await workerRows())];
  console.log(
    `CPU per message in the woken process (idle CPU subtracted), ${WINDOW_MS / 1000} s each`,
  );
  console.log("hop                                      spacing                messages   µs CPU");
  for (const row of rows) {
    console.log(
      [
        row.hop.padEnd(40),
        row.spacing.padEnd(22),
        String(row.messages).padStart(8),
        Math.round(row.microseconds).toString().padStart(8),
      ].join(" "),
    );
  }
}

if (process.argv[2] === "echo-server") {
  createServer((socket) => {
    socket.setNoDelay(true);
    socket.on("data", (data) => socket.write(data));
  }).listen(ECHO_PORT, "127.0.0.1", () => process.send?.("listening"));
} else {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
