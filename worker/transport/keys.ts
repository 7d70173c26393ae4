/**
 * Where the gateway ↔ worker transport keeps its state in Redis, the Redis commands it runs
 * there, and the Redis clock both sides read. Shared by `consumer.ts` and `../client.ts`.
 *
 * Every key shares the one hash tag `{q}`, so they all live in one Redis Cluster slot: the
 * worker's MULTI that stores a result, pushes the reply and acknowledges the request touches the
 * stream, a reply list and a done-cache entry at once, and Cluster only allows that within a slot.
 * One slot means one shard carries the queue; that is a few hundred bytes per request and scales
 * far past what the workers' TOTP checks can consume.
 */

/** The consumer group every worker joins; one group means each request goes to one worker. */
export const CONSUMER_GROUP = "workers";

export interface TransportKeys {
  /** Stream of requests (XADD by gateways, XREADGROUP by workers). */
  requests: string;
  /** Sorted set of worker id → last heartbeat, in Redis-clock milliseconds. */
  workers: string;
  /** Every reply list starts with this; a worker refuses to push anywhere else. */
  replyPrefix: string;
  /** The list a gateway's client blocks on for its replies. */
  replyList(gatewayId: string): string;
  /** Cached first answer to a request id, so a retry gets the same answer. */
  done(requestId: string): string;
}

export function transportKeys(prefix: string): TransportKeys {
  const base = `${prefix}:{q}`;
  return {
    requests: `${base}:requests`,
    workers: `${base}:workers`,
    replyPrefix: `${base}:reply:`,
    replyList: (gatewayId) => `${base}:reply:${gatewayId}`,
    done: (requestId) => `${base}:done:${requestId}`,
  };
}

/** Request ids end up in key names, so keep them short and free of separators' surprises. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** One request as it sits in the stream. The request itself is JSON in `body`. */
export interface RequestEntry {
  requestId: string;
  replyList: string;
  /** Epoch milliseconds on the Redis clock after which the gateway has stopped waiting. */
  deadline: number;
  body: string;
  /** The gateway's own request id, only so both sides' logs can be joined. */
  trace?: string;
}

export function encodeRequestEntry(entry: RequestEntry): Record<string, string> {
  const fields: Record<string, string> = {
    id: entry.requestId,
    reply: entry.replyList,
    deadline: String(entry.deadline),
    body: entry.body,
  };
  if (entry.trace !== undefined) fields.trace = entry.trace;
  return fields;
}

/** Undefined when the entry cannot be answered safely; the worker then drops it. */
export function decodeRequestEntry(
  fields: Record<string, string>,
  replyPrefix: string,
): RequestEntry | undefined {
  const { id: requestId, reply: replyList, body, trace } = fields;
  const deadline = Number(fields.deadline);
  if (!requestId || !REQUEST_ID_PATTERN.test(requestId) || body === undefined) return undefined;
  // Only ever push into a reply list under our own prefix: never an arbitrary key, another slot.
  if (!replyList?.startsWith(replyPrefix) || !Number.isFinite(deadline)) return undefined;
  return { requestId, replyList, deadline, body, trace };
}

/*
 * Replies are checked at run time rather than trusted from node-redis's types, which depend on
 * the connection's RESP version and type mapping; the transport needs RESP2 with strings.
 */

/** XREADGROUP: `[{ name, messages: [{ id, message }] }]`, or null when the block timed out. */
export function readEntries(reply: unknown): StreamEntry[] {
  if (reply === null) return [];
  if (!Array.isArray(reply))
    throw new Error("unexpected XREADGROUP reply; the transport needs RESP2");
  return reply.flatMap((stream: { messages?: unknown }) => asEntries(stream.messages));
}

/** XAUTOCLAIM: `{ nextId, messages: [{ id, message } | null] }`; null marks a trimmed entry. */
export function claimedEntries(reply: unknown): { nextId: string; entries: StreamEntry[] } {
  const { nextId, messages } = (reply ?? {}) as { nextId?: unknown; messages?: unknown };
  if (typeof nextId !== "string")
    throw new Error("unexpected XAUTOCLAIM reply; the transport needs RESP2");
  return { nextId, entries: asEntries(messages) };
}

/** BLMPOP: `[key, [element, …]]`, or null when the block timed out. */
export function poppedElements(reply: unknown): string[] {
  if (!Array.isArray(reply) || !Array.isArray(reply[1])) return [];
  return (reply[1] as unknown[]).map(String);
}

function asEntries(messages: unknown): StreamEntry[] {
  if (!Array.isArray(messages))
    throw new Error("unexpected stream reply; the transport needs RESP2");
  return messages.filter(
    (entry: Partial<StreamEntry> | null): entry is StreamEntry =>
      typeof entry?.id === "string" && typeof entry.message === "object" && entry.message !== null,
  );
}

/**
 * The Redis commands the transport runs on these keys, written structurally so that both a
 * node-redis client and a cluster (RESP2, the default) fit without casts, and tests can see at a
 * glance what the transport needs. Shapes follow node-redis v5's typings.
 */
export interface TransportRedis {
  /** Blocking reads need their own connection: a blocked connection serves nothing else. */
  duplicate(): TransportRedis;
  connect(): Promise<unknown>;
  destroy(): void;
  on(event: "error", listener: (error: Error) => void): unknown;
  /** A cluster has no `isReady`; a client does, and the gateway uses it to fail fast. */
  readonly isReady?: boolean;
  time(): Promise<Array<string | Buffer>>;
  get(key: string): Promise<string | Buffer | null>;
  xAdd(
    key: string,
    id: string,
    message: Record<string, string>,
    options?: { TRIM?: { strategy?: "MAXLEN"; strategyModifier?: "~" | "="; threshold: number } },
  ): Promise<unknown>;
  xGroupCreate(
    key: string,
    group: string,
    id: string,
    options?: { MKSTREAM?: boolean },
  ): Promise<unknown>;
  xGroupDelConsumer(key: string, group: string, consumer: string): Promise<unknown>;
  xInfoConsumers(
    key: string,
    group: string,
  ): Promise<Array<{ name: unknown; pending: unknown; idle: unknown }>>;
  xReadGroup(
    group: string,
    consumer: string,
    streams: { key: string; id: string },
    options?: { COUNT?: number; BLOCK?: number },
  ): Promise<unknown>;
  xAutoClaim(
    key: string,
    group: string,
    consumer: string,
    minIdleTime: number,
    start: string,
    options?: { COUNT?: number },
  ): Promise<unknown>;
  blmPop(
    timeout: number,
    keys: string,
    side: "LEFT" | "RIGHT",
    options?: { COUNT?: number },
  ): Promise<unknown>;
  zAdd(key: string, member: { score: number; value: string }): Promise<unknown>;
  zCount(key: string, min: number, max: string): Promise<number | string>;
  zRem(key: string, member: string): Promise<unknown>;
  zRemRangeByScore(key: string, min: string, max: number): Promise<unknown>;
  /** On a cluster `routing` picks the node; all our keys share one slot, so any of them works. */
  multi(routing?: string): TransportMulti;
}

export interface TransportMulti {
  set(
    key: string,
    value: string,
    options: { expiration: { type: "PX"; value: number } },
  ): TransportMulti;
  lPush(key: string, elements: string[]): TransportMulti;
  pExpire(key: string, milliseconds: number): TransportMulti;
  xAck(key: string, group: string, ids: string[]): TransportMulti;
  xDel(key: string, ids: string[]): TransportMulti;
  exec(): Promise<unknown>;
}

export interface StreamEntry {
  id: string;
  message: Record<string, string>;
}

/** Milliseconds on the Redis server's clock: the one clock every gateway and worker agrees on. */
export async function redisTimeMs(redis: Pick<TransportRedis, "time">): Promise<number> {
  const [seconds, microseconds] = (await redis.time()).map(String);
  return Number(seconds) * 1000 + Math.floor(Number(microseconds) / 1000);
}

export interface RedisClock {
  /** Local time corrected by the last sampled offset to Redis; local time until first synced. */
  now(): number;
  sync(): Promise<void>;
  /** How long ago the offset was sampled; Infinity before the first sample. */
  ageMs(): number;
}

/**
 * Deadlines are compared across machines, so both sides read Redis TIME rather than trusting
 * their own clocks, but only every few seconds: the offset, not a round trip, is kept per call.
 */
export function createRedisClock(redis: Pick<TransportRedis, "time">): RedisClock {
  let offsetMs = 0;
  let sampledAt = -Infinity;
  return {
    now: () => Date.now() + offsetMs,
    ageMs: () => Date.now() - sampledAt,
    async sync() {
      const sentAt = Date.now();
      const serverMs = await redisTimeMs(redis);
      const receivedAt = Date.now();
      offsetMs = Math.round(serverMs - (sentAt + receivedAt) / 2);
      sampledAt = receivedAt;
    },
  };
}

/** Waits `ms`, or less if `signal` aborts first; never rejects, so loops can simply re-check. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** True if `work` settled (either way) within `ms`; used to bound every step of a shutdown. */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  const timer = new AbortController();
  const settled = work.then(
    () => true,
    () => true,
  );
  const inTime = await Promise.race([settled, pause(ms, timer.signal).then(() => false)]);
  timer.abort(); // so a pending timer does not hold the process open after a quick drain
  return inTime;
}

/** Workers whose heartbeat is at most `withinMs` old on the Redis clock (readiness, scaling). */
export async function countLiveWorkers(
  redis: Pick<TransportRedis, "time" | "zCount">,
  prefix: string,
  withinMs: number,
): Promise<number> {
  const now = await redisTimeMs(redis);
  return Number(await redis.zCount(transportKeys(prefix).workers, now - withinMs, "+inf"));
}

/** node-redis throws when destroying a connection that is already closed; shutdown must not. */
export function destroyQuietly(connection: Pick<TransportRedis, "destroy">): void {
  try {
    connection.destroy();
  } catch {
    // already closed: nothing left to release
  }
}
