/**
 * The typed client the gateway uses to call the auth worker.
 *
 * A call validates its request, appends it to the request stream with a deadline on the Redis
 * clock, and waits for the answer on this client's own reply list, read by ONE blocking
 * connection that hands each reply to its waiter. Every call settles by its deadline: a dead
 * worker, an unreachable Redis or a worker error all become `WorkerUnavailableError`, which the
 * gateway turns into SERVICE_UNAVAILABLE and never into an acceptance.
 *
 * Request bodies may carry codes, so nothing here logs them; logs name the op and ids only.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import {
  ReplyEnvelopeSchema,
  ReplySchemas,
  RequestSchema,
  type ReplyEnvelope,
  type ReplyFor,
  type WorkerOp,
  type WorkerRequest,
} from "./protocol";
import {
  countLiveWorkers,
  createRedisClock,
  destroyQuietly,
  encodeRequestEntry,
  pause,
  poppedElements,
  REQUEST_ID_PATTERN,
  transportKeys,
  type TransportRedis,
} from "./transport/keys";

export type UnavailableReason = "DEADLINE" | "REDIS" | "WORKER" | "PROTOCOL" | "CLOSED";

const UNAVAILABLE_MESSAGES: Record<UnavailableReason, string> = {
  DEADLINE: "the auth worker did not answer before the deadline",
  REDIS: "the request could not be queued for the auth worker",
  WORKER: "the auth worker could not complete the request",
  PROTOCOL: "the auth worker's reply did not match the contract",
  CLOSED: "the worker client is closed",
};

/** The worker could not answer in time, or at all. Map it to SERVICE_UNAVAILABLE; fail closed. */
export class WorkerUnavailableError extends Error {
  override readonly name = "WorkerUnavailableError";
  readonly code = "UNAVAILABLE";
  constructor(
    readonly reason: UnavailableReason,
    readonly requestId: string,
    options?: { cause?: unknown },
  ) {
    super(UNAVAILABLE_MESSAGES[reason], options);
  }
}

/** The worker answered, and the answer is a refusal of this request. */
export class WorkerRequestError extends Error {
  override readonly name = "WorkerRequestError";
  constructor(
    readonly code: "BAD_REQUEST" | "UNSEAL_FAILED",
    readonly requestId: string,
  ) {
    super(
      code === "BAD_REQUEST" ? "invalid worker request" : "the sealed seed could not be opened",
    );
  }
}

export interface WorkerClientOptions {
  redis: TransportRedis;
  prefix: string;
  /** Default time a call waits for its answer. */
  deadlineMs?: number;
  /** Names this client's reply list; unique per gateway process. */
  gatewayId?: string;
  /** Bounds the request stream (XADD MAXLEN ~) while no worker drains it. */
  maxQueueLength?: number;
  logger?: Pick<Logger, "warn">;
}

export interface CallOptions {
  /** Reuse to retry: a retry gets the first answer instead of a second verification. */
  requestId?: string;
  deadlineMs?: number;
  /** The gateway's own request id, carried so both processes' logs can be joined. */
  logContext?: { requestId?: string };
}

export interface WorkerClient {
  call<Op extends WorkerOp>(
    request: Extract<WorkerRequest, { op: Op }>,
    options?: CallOptions,
  ): Promise<ReplyFor<Op>>;
  ping(): Promise<ReplyFor<"ping">>;
  /** Workers with a heartbeat in the last `withinMs` (default 5 s), for readiness. */
  liveWorkers(withinMs?: number): Promise<number>;
  /** Local epoch ms of the last reply received, or null before the first. */
  lastReplyAt(): number | null;
  /** Rejects every pending call with WorkerUnavailableError; leaves `redis` open. */
  close(): Promise<void>;
}

interface Waiter {
  op: WorkerOp;
  requestId: string;
  timer: NodeJS.Timeout;
  resolve(result: unknown): void;
  reject(error: Error): void;
}

/** Re-read the Redis clock this often; the offset drifts slowly, a round trip per call is waste. */
const CLOCK_RESYNC_MS = 10_000;
const REPLY_BLOCK_SECONDS = 2;
const REPLY_BATCH = 128;

export function createWorkerClient(options: WorkerClientOptions): WorkerClient {
  const { redis, prefix, logger } = options;
  const defaultDeadlineMs = options.deadlineMs ?? 3000;
  const gatewayId = options.gatewayId ?? randomUUID();
  if (!REQUEST_ID_PATTERN.test(gatewayId)) throw new Error("gatewayId must match [A-Za-z0-9._:-]");
  const keys = transportKeys(prefix);
  const replyList = keys.replyList(gatewayId);
  const clock = createRedisClock(redis);
  const closing = new AbortController();
  /** By request id; retries of one id share the first answer, each checked against its own op. */
  const pending = new Map<string, Set<Waiter>>();
  let syncing: Promise<void> | undefined;
  let reader: { connection: TransportRedis; done: Promise<void> } | undefined;
  let lastReply: number | null = null;

  function forget(waiter: Waiter): boolean {
    clearTimeout(waiter.timer);
    const waiters = pending.get(waiter.requestId);
    if (!waiters?.delete(waiter)) return false;
    if (waiters.size === 0) pending.delete(waiter.requestId);
    return true;
  }

  function deliver(waiter: Waiter, envelope: ReplyEnvelope): void {
    const { requestId } = waiter;
    if (!envelope.ok) {
      const { error } = envelope;
      if (error === "UNAVAILABLE") waiter.reject(new WorkerUnavailableError("WORKER", requestId));
      else waiter.reject(new WorkerRequestError(error, requestId));
      return;
    }
    const result = ReplySchemas[waiter.op].safeParse(envelope.result);
    if (result.success) return waiter.resolve(result.data);
    logger?.warn({ op: waiter.op, requestId }, "worker reply did not match the contract");
    waiter.reject(new WorkerUnavailableError("PROTOCOL", requestId));
  }

  function dispatch(raw: string): void {
    let envelope: ReplyEnvelope;
    try {
      envelope = ReplyEnvelopeSchema.parse(JSON.parse(raw));
    } catch {
      logger?.warn("ignored a reply that is not a worker envelope");
      return;
    }
    lastReply = Date.now();
    // No waiter: a late or second answer to a call that has already settled.
    for (const waiter of pending.get(envelope.id) ?? []) {
      forget(waiter);
      deliver(waiter, envelope);
    }
  }

  async function readReplies(connection: TransportRedis): Promise<void> {
    await connection.connect();
    let failures = 0;
    while (!closing.signal.aborted) {
      try {
        const popped = await connection.blmPop(REPLY_BLOCK_SECONDS, replyList, "RIGHT", {
          COUNT: REPLY_BATCH,
        });
        failures = 0;
        // Workers LPUSH and this pops from the RIGHT, so replies arrive in order.
        for (const raw of poppedElements(popped)) dispatch(raw);
      } catch (error) {
        if (closing.signal.aborted) break;
        // Calls keep their own deadlines, so a Redis outage costs availability, never a hang.
        if (failures === 0) logger?.warn({ err: error }, "reading worker replies failed; retrying");
        await pause(Math.min(50 * 2 ** failures++, 1000), closing.signal);
      }
    }
  }

  /** One blocking connection per client, opened on first use and reopened if it ever fails. */
  function ensureReader(): void {
    if (reader || closing.signal.aborted) return;
    const connection = redis.duplicate();
    connection.on("error", () => undefined); // reported through failed reads, not per reconnect
    const done = readReplies(connection)
      .catch((error: unknown) => logger?.warn({ err: error }, "worker reply reader stopped"))
      .finally(() => {
        destroyQuietly(connection);
        if (reader?.connection === connection) reader = undefined;
      });
    reader = { connection, done };
  }

  function syncClock(): Promise<void> {
    syncing ??= clock.sync().finally(() => (syncing = undefined));
    return syncing;
  }

  async function enqueue(
    waiter: Waiter,
    request: WorkerRequest,
    localDeadline: number,
    trace?: string,
  ) {
    // A client can say it is offline; fail at once instead of queueing into the outage.
    if (redis.isReady === false) throw new Error("Redis connection is not ready");
    if (clock.ageMs() === Infinity) await syncClock();
    else if (clock.ageMs() > CLOCK_RESYNC_MS) syncClock().catch(() => undefined);
    if (!pending.get(waiter.requestId)?.has(waiter)) return; // timed out while syncing
    const deadline = Math.floor(localDeadline + (clock.now() - Date.now()));
    const entry = {
      requestId: waiter.requestId,
      replyList,
      deadline,
      body: JSON.stringify(request),
      trace,
    };
    const trim = {
      strategy: "MAXLEN",
      strategyModifier: "~",
      threshold: options.maxQueueLength ?? 10_000,
    } as const;
    await redis.xAdd(keys.requests, "*", encodeRequestEntry(entry), { TRIM: trim });
  }

  function call<Op extends WorkerOp>(
    request: Extract<WorkerRequest, { op: Op }>,
    callOptions: CallOptions = {},
  ): Promise<ReplyFor<Op>> {
    const requestId = callOptions.requestId ?? randomUUID();
    const deadlineMs = callOptions.deadlineMs ?? defaultDeadlineMs;
    const localDeadline = Date.now() + deadlineMs;
    const parsed = RequestSchema.safeParse(request);
    if (!parsed.success || !REQUEST_ID_PATTERN.test(requestId)) {
      return Promise.reject(new WorkerRequestError("BAD_REQUEST", requestId));
    }
    if (closing.signal.aborted)
      return Promise.reject(new WorkerUnavailableError("CLOSED", requestId));
    const trace = callOptions.logContext?.requestId;
    return new Promise<ReplyFor<Op>>((resolve, reject) => {
      const waiter: Waiter = {
        op: request.op,
        requestId,
        resolve: resolve as (result: unknown) => void,
        reject,
        timer: setTimeout(() => {
          if (!forget(waiter)) return;
          logger?.warn({ op: request.op, requestId, trace, deadlineMs }, "worker call timed out");
          reject(new WorkerUnavailableError("DEADLINE", requestId));
        }, deadlineMs),
      };
      const waiters = pending.get(requestId) ?? new Set<Waiter>();
      pending.set(requestId, waiters.add(waiter));
      ensureReader();
      enqueue(waiter, parsed.data, localDeadline, trace).catch((error: unknown) => {
        if (forget(waiter))
          reject(new WorkerUnavailableError("REDIS", requestId, { cause: error }));
      });
    });
  }

  return {
    call,
    ping: () => call({ op: "ping" }),
    liveWorkers(withinMs = 5000) {
      const timeout = () => new WorkerUnavailableError("REDIS", "liveWorkers");
      return withinDeadline(countLiveWorkers(redis, prefix, withinMs), defaultDeadlineMs, timeout);
    },
    lastReplyAt: () => lastReply,
    async close() {
      if (closing.signal.aborted) return;
      closing.abort();
      for (const waiters of [...pending.values()]) {
        for (const waiter of waiters) {
          forget(waiter);
          waiter.reject(new WorkerUnavailableError("CLOSED", waiter.requestId));
        }
      }
      // Destroy rather than wait out the blocking pop; no caller is waiting for its answers now.
      if (reader) destroyQuietly(reader.connection);
      await reader?.done;
    },
  };
}

/** Readiness probes must answer too, even when the connection queues commands while offline. */
function withinDeadline<T>(work: Promise<T>, ms: number, timeoutError: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(timeoutError()), ms);
    work.then(
      (value) => (clearTimeout(timer), resolve(value)),
      (error: unknown) => (clearTimeout(timer), reject(error)),
    );
  });
}
