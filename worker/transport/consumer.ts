/**
 * The worker side of the transport: one member of a Redis Streams consumer group.
 *
 * - Reads requests in batches (XREADGROUP BLOCK/COUNT) on its own connection and runs up to
 *   `concurrency` of them at once.
 * - Answers with one MULTI: cache the result, LPUSH the reply to the gateway's list, XACK, XDEL
 *   (`answers.ts`, which batches the answers of one event-loop turn). A crash before that MULTI
 *   leaves the request pending, never half-answered.
 * - Takes over requests a dead worker left pending (XAUTOCLAIM after `claimIdleMs`). A slow but
 *   live worker may then race its successor; that is safe because every op is idempotent by
 *   request id (done-cache here for reseal, the verifier's own stored result for verify), and
 *   the gateway keeps only the first answer.
 * - Drops requests past their deadline unanswered: the gateway has already said
 *   SERVICE_UNAVAILABLE, and running a verify nobody waits for would only burn the user's code.
 */
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import {
  RequestSchema,
  type ReplyEnvelope,
  type WORKER_ERRORS,
  type WorkerOp,
  type WorkerRequest,
} from "../protocol";
import {
  CONSUMER_GROUP,
  createRedisClock,
  decodeRequestEntry,
  destroyQuietly,
  pause,
  settlesWithin,
  readEntries,
  claimedEntries,
  transportKeys,
  type RequestEntry,
  type StreamEntry,
  type TransportRedis,
} from "./keys";
import { createAnswerSender } from "./answers";

export { countLiveWorkers } from "./keys";

export type ExecutableRequest = Exclude<WorkerRequest, { op: "ping" }>;
export type TransportLogger = Pick<Logger, "debug" | "info" | "warn" | "error">;
export type WorkerErrorCode = (typeof WORKER_ERRORS)[number];
export type ExecutionOutcome =
  { ok: true; result: unknown } | { ok: false; error: WorkerErrorCode };
export type RequestOutcome = "ok" | WorkerErrorCode | "cached" | "expired" | "dropped";
export type SettledRequest = { op: WorkerOp | "unknown"; outcome: RequestOutcome; ms: number };

export interface StreamConsumerOptions {
  redis: TransportRedis;
  prefix: string;
  consumerId: string;
  /**
   * Runs one validated request and never throws: failures come back as an error code. Ping never
   * reaches it; the transport answers ping itself, so a ping proves the whole path works.
   */
  execute(request: ExecutableRequest, requestId: string): Promise<ExecutionOutcome>;
  logger: TransportLogger;
  concurrency?: number;
  /** A pending request idle this long is presumed orphaned by a dead worker and taken over. */
  claimIdleMs?: number;
  /** How long one XREADGROUP blocks; also bounds how long `stop()` waits for the read loop. */
  blockMs?: number;
  heartbeatMs?: number;
  /**
   * A consumer of the group idle this long with nothing pending belonged to a worker that died:
   * it is removed, so crashed workers do not pile up in the group (default 60 s).
   */
  consumerRetentionMs?: number;
  /** How long a retry with the same request id gets the first answer. */
  doneTtlMs?: number;
  /** A gateway that died leaves its reply list behind; this expires it. */
  replyTtlMs?: number;
  onSettled?(event: SettledRequest): void;
}

export interface StreamConsumer {
  start(): Promise<void>;
  /**
   * Local epoch ms of the last heartbeat Redis accepted, 0 before the first. A Redis that is
   * connected but stalled accepts none, which a connection state cannot show.
   */
  lastHeartbeatAt(): number;
  /** Stops reading, drains in-flight requests for up to `drainTimeoutMs`, removes the heartbeat. */
  stop(drainTimeoutMs?: number): Promise<{ drained: boolean; abandoned: number }>;
}

/** Heartbeats older than this are pruned, so crashed workers do not accumulate. */
const HEARTBEAT_RETENTION_MS = 60_000;

export function createStreamConsumer(options: StreamConsumerOptions): StreamConsumer {
  const { redis, consumerId, logger } = options;
  const concurrency = options.concurrency ?? 32;
  const claimIdleMs = options.claimIdleMs ?? 1000;
  const blockMs = options.blockMs ?? 250;
  const heartbeatMs = options.heartbeatMs ?? 1000;
  const consumerRetentionMs = options.consumerRetentionMs ?? HEARTBEAT_RETENTION_MS;
  const doneTtlMs = options.doneTtlMs ?? 600_000; // as long as the verifier keeps its own mark
  const replyTtlMs = options.replyTtlMs ?? 60_000;
  /** In-flight requests at or below which the reader fetches more. */
  const readAgainAt = Math.floor(concurrency / 4);
  const keys = transportKeys(options.prefix);
  const clock = createRedisClock(redis);
  const stopSignal = new AbortController();
  /** Keyed by stream entry id, so a takeover of our own slow request does not run it twice. */
  const inFlight = new Map<string, Promise<void>>();
  let wakeReader: (() => void) | undefined;
  let reader: TransportRedis | undefined;
  let loops: Promise<void>[] = [];

  async function ensureGroup(): Promise<void> {
    try {
      // From "0", not "$": requests queued before the first worker started are still served.
      await redis.xGroupCreate(keys.requests, CONSUMER_GROUP, "0", { MKSTREAM: true });
    } catch (error) {
      if (!String(error).includes("BUSYGROUP")) throw error;
    }
  }

  let lastBeatAt = 0;
  async function beat(): Promise<void> {
    await clock.sync();
    const now = clock.now();
    await redis.zAdd(keys.workers, { score: now, value: consumerId });
    await redis.zRemRangeByScore(keys.workers, "-inf", now - HEARTBEAT_RETENTION_MS);
    lastBeatAt = Date.now();
  }

  function admit(entry: StreamEntry): void {
    if (inFlight.has(entry.id)) return;
    const task = handleEntry(entry)
      .catch((error: unknown) => {
        // Usually Redis went away mid-answer; the entry stays pending and is claimed again.
        logger.warn(
          { err: error, entryId: entry.id },
          "could not answer a request; it stays pending",
        );
      })
      .finally(() => {
        inFlight.delete(entry.id);
        wakeReader?.();
      });
    inFlight.set(entry.id, task);
  }

  async function handleEntry(entry: StreamEntry): Promise<void> {
    const startedAt = performance.now();
    const settled = (op: WorkerOp | "unknown", outcome: RequestOutcome) =>
      options.onSettled?.({ op, outcome, ms: performance.now() - startedAt });

    const fields = decodeRequestEntry(entry.message, keys.replyPrefix);
    if (!fields) {
      logger.warn(
        { entryId: entry.id },
        "dropped a request entry without a usable id, reply list or deadline",
      );
      await finish(entry.id);
      return settled("unknown", "dropped");
    }
    const context = { requestId: fields.requestId, trace: fields.trace };
    if (clock.now() >= fields.deadline) {
      logger.debug(context, "dropped a request past its deadline without running it");
      await finish(entry.id);
      return settled("unknown", "expired");
    }
    const request = parseRequest(fields.body);
    if (!request) {
      await finish(entry.id, fields, { id: fields.requestId, ok: false, error: "BAD_REQUEST" });
      return settled("unknown", "BAD_REQUEST");
    }
    if (request.op === "ping") {
      const result = { workerId: consumerId, time: clock.now() };
      await finish(entry.id, fields, { id: fields.requestId, ok: true, result });
      return settled("ping", "ok");
    }
    const cacheable = CACHED_OPS.has(request.op);
    if (cacheable) {
      const cached = await redis.get(keys.done(fields.requestId));
      if (cached !== null) {
        const reply = replayCachedReply(String(cached), fields);
        await finish(entry.id, fields, reply);
        return settled(request.op, "cached");
      }
    }
    const envelope: ReplyEnvelope = {
      id: fields.requestId,
      ...(await options.execute(request, fields.requestId)),
    };
    // UNAVAILABLE is transient (Redis hiccup, bug); a retry deserves a fresh attempt.
    const remember = cacheable && (envelope.ok || envelope.error !== "UNAVAILABLE");
    await finish(entry.id, fields, envelope, remember);
    const outcome = envelope.ok ? "ok" : envelope.error;
    // `trace` is the gateway's own request id: it joins this line to the gateway's log of it.
    logger.info({ ...context, op: request.op, outcome }, "request answered");
    settled(request.op, outcome);
  }

  const sendAnswer = createAnswerSender({ redis, keys, doneTtlMs, replyTtlMs });

  /** Acknowledges the entry and, when `to` and `reply` are given, answers it. */
  function finish(entryId: string, to?: RequestEntry, reply?: ReplyEnvelope, remember = false) {
    return sendAnswer({
      entryId,
      replyList: to?.replyList,
      reply,
      remember:
        to && remember ? { requestId: to.requestId, fingerprint: fingerprint(to.body) } : undefined,
    });
  }

  async function readLoop(connection: TransportRedis): Promise<void> {
    let failures = 0;
    while (!stopSignal.signal.aborted) {
      // Read the next batch only once most of this one has been answered. Requests then move
      // through their Redis calls together, each phase for the whole batch in one write, and
      // under load every read returns what queued meanwhile: batches grow with the load
      // instead of each request costing its own round trips (README, Benchmarks).
      if (inFlight.size > readAgainAt) {
        await new Promise<void>((resolve) => (wakeReader = resolve));
        continue;
      }
      const room = concurrency - inFlight.size;
      try {
        const reply = await connection.xReadGroup(
          CONSUMER_GROUP,
          consumerId,
          { key: keys.requests, id: ">" },
          { COUNT: room, BLOCK: blockMs },
        );
        failures = 0;
        // Entries read after stop() began are already ours (in our pending list): run them too.
        for (const entry of readEntries(reply)) admit(entry);
      } catch (error) {
        if (stopSignal.signal.aborted) break;
        await recover(error, "reading requests failed");
        await pause(Math.min(50 * 2 ** failures++, 2000), stopSignal.signal);
      }
    }
  }

  async function claimLoop(): Promise<void> {
    let cursor = "0-0";
    while (!stopSignal.signal.aborted) {
      await pause(Math.max(50, claimIdleMs / 2), stopSignal.signal);
      const room = concurrency - inFlight.size;
      if (stopSignal.signal.aborted || room <= 0) continue;
      try {
        const { requests } = keys;
        const claimed = await redis.xAutoClaim(
          requests,
          CONSUMER_GROUP,
          consumerId,
          claimIdleMs,
          cursor,
          {
            COUNT: room,
          },
        );
        const { nextId, entries } = claimedEntries(claimed);
        cursor = nextId;
        for (const entry of entries) {
          if (inFlight.has(entry.id)) continue;
          logger.info({ entryId: entry.id }, "took over a request another worker left pending");
          admit(entry);
        }
      } catch (error) {
        await recover(error, "claiming orphaned requests failed");
      }
    }
  }

  async function heartbeatLoop(): Promise<void> {
    while (!stopSignal.signal.aborted) {
      await pause(heartbeatMs, stopSignal.signal);
      if (stopSignal.signal.aborted) break;
      await beat().catch((error: unknown) => logger.warn({ err: error }, "heartbeat failed"));
    }
  }

  /** Its own loop, so that neither heartbeats nor takeovers wait for it. */
  async function consumerCleanupLoop(): Promise<void> {
    while (!stopSignal.signal.aborted) {
      await pause(consumerRetentionMs / 2, stopSignal.signal);
      if (stopSignal.signal.aborted) break;
      await removeDeadConsumers().catch((error: unknown) =>
        logger.warn({ err: error }, "removing dead consumers failed"),
      );
    }
  }

  /**
   * Removes consumers of workers that died. Redis 7.0 counts a consumer idle from the last entry
   * it was given, so a live worker that had no requests for a while may be removed too; that is
   * harmless, as its next read adds it back. Only one with nothing pending: removing a consumer
   * drops its pending entries from the group, so those are first taken over by a live worker
   * (claimLoop).
   */
  async function removeDeadConsumers(): Promise<void> {
    const consumers = await redis.xInfoConsumers(keys.requests, CONSUMER_GROUP);
    for (const consumer of consumers) {
      const dead = Number(consumer.pending) === 0 && Number(consumer.idle) > consumerRetentionMs;
      if (dead && consumer.name !== consumerId) {
        await redis.xGroupDelConsumer(keys.requests, CONSUMER_GROUP, String(consumer.name));
        logger.info({ consumer: consumer.name }, "removed the consumer of a worker that died");
      }
    }
  }

  /** A deleted stream takes the group with it (NOGROUP); recreate it instead of spinning. */
  async function recover(error: unknown, message: string): Promise<void> {
    if (String(error).includes("NOGROUP")) await ensureGroup().catch(() => undefined);
    else logger.warn({ err: error }, message);
  }

  return {
    lastHeartbeatAt: () => lastBeatAt,
    async start() {
      if (reader || stopSignal.signal.aborted) throw new Error("a consumer starts once");
      await ensureGroup();
      await beat();
      // XREADGROUP BLOCK holds its connection; give it one of its own.
      const connection = redis.duplicate();
      connection.on("error", (error) =>
        logger.warn({ err: error }, "request reader connection error"),
      );
      await connection.connect();
      reader = connection;
      loops = [readLoop(connection), claimLoop(), heartbeatLoop(), consumerCleanupLoop()];
      logger.info({ workerId: consumerId, concurrency, claimIdleMs }, "taking requests");
    },

    async stop(drainTimeoutMs = 5000) {
      if (stopSignal.signal.aborted)
        return { drained: inFlight.size === 0, abandoned: inFlight.size };
      stopSignal.abort();
      wakeReader?.();
      // The read loop ends when its current XREADGROUP returns (≤ blockMs); past that, Redis is
      // unreachable and destroying the connection is the only way to end the call.
      await settlesWithin(Promise.all(loops), blockMs + 1000);
      if (reader) destroyQuietly(reader);
      logger.info(
        { workerId: consumerId, inFlight: inFlight.size },
        "stopped taking requests; draining",
      );
      const drained = await settlesWithin(Promise.all(inFlight.values()), drainTimeoutMs);
      const abandoned = inFlight.size;
      if (!drained)
        logger.warn({ abandoned }, "drain timed out; other workers will take these over");
      await settlesWithin(redis.zRem(keys.workers, consumerId), 1000);
      // Leave the group only with nothing pending: deleting a consumer discards its pending list.
      if (drained)
        await settlesWithin(
          redis.xGroupDelConsumer(keys.requests, CONSUMER_GROUP, consumerId),
          1000,
        );
      logger.info({ workerId: consumerId }, "heartbeat removed");
      return { drained, abandoned };
    },
  };
}

/**
 * Ops whose first answer the transport stores for retries under their request id. Not provision:
 * its reply holds the plaintext seed, which must never rest in Redis, and running it again on a
 * retry is harmless because the gateway keeps only the first answer. Not verify: the verifier
 * stores its own result under the request id, fingerprinted, in the device's slot, in the same
 * script that decides (verify-3.lua), so a second copy here would only cost every verification a
 * GET and a SET.
 */
const CACHED_OPS: ReadonlySet<WorkerOp> = new Set(["reseal"]);

function parseRequest(body: string): WorkerRequest | undefined {
  try {
    const parsed = RequestSchema.safeParse(JSON.parse(body));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Identifies a request's content, so a cached answer is only ever replayed to the same request. */
function fingerprint(body: string): string {
  return createHash("sha256").update(body).digest("base64url");
}

/**
 * A request id reused for a different request (another op, device or code) is a caller bug or
 * an attack: it must never receive the first request's answer, least of all an acceptance.
 */
function replayCachedReply(cached: string, entry: RequestEntry): ReplyEnvelope {
  const stored = JSON.parse(cached) as { fingerprint: string; reply: ReplyEnvelope };
  if (stored.fingerprint !== fingerprint(entry.body)) {
    return { id: entry.requestId, ok: false, error: "BAD_REQUEST" };
  }
  return { ...stored.reply, id: entry.requestId };
}
