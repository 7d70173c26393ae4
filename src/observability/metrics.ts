/**
 * The gateway's Prometheus metrics, on a registry of its own (one per gateway, so tests that
 * start several never share counters). Labels are closed sets: the operation label is the
 * operation's first root field, a name from the schema, never the client's operation name; the
 * first `maxOperationNames` distinct ones get their own series and later ones share `other`.
 *
 * Nothing here ever carries a code, a seed or a token: only names, outcomes and timings.
 */
import { withTimeout } from "../common/deadline";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import {
  CONSUMER_GROUP,
  countLiveWorkers,
  transportKeys,
  type TransportRedis,
} from "../../worker/transport/keys";
import type { OperationLimit } from "../plugins/limit-error";

/** The Redis commands the queue gauges read; a node-redis client or cluster has them all. */
export type QueueRedis = Pick<TransportRedis, "time" | "zCount"> & {
  xLen(key: string): Promise<number>;
  xPending(key: string, group: string): Promise<{ pending: number }>;
};

export interface GatewayMetricsOptions {
  /** When given, queue depth and live workers are read from Redis at each scrape. */
  queue?: {
    redis: QueueRedis;
    prefix: string;
    /** A worker whose heartbeat is this recent counts as live. Default 10 000 ms. */
    livenessMs?: number;
    /** How long a scrape waits for each queue read before reporting it unknown (NaN). */
    readTimeoutMs?: number;
  };
  /** Distinct operation labels (first root fields) given their own latency series. Default 100. */
  maxOperationNames?: number;
  /** Process metrics (CPU, memory, event loop lag, GC). Default true. */
  processMetrics?: boolean;
}

export type VerifyOutcome = "OK" | "INVALID" | "REPLAYED" | "THROTTLED" | "CLOCK_SKEW";

export interface GatewayMetrics {
  readonly registry: Registry;
  /** Seconds from the start of a GraphQL request to its response. */
  readonly requestDuration: Histogram<"operation" | "type" | "outcome">;
  readonly verifications: Counter<"mode" | "outcome">;
  readonly attemptLimitRefusals: Counter<"mode">;
  /** How far from Redis's clock devices are: |drift| when accepted, |offset| when skewed. */
  readonly clockOffsets: Histogram<"mode" | "outcome">;
  readonly workerCalls: Histogram<"op" | "result">;
  readonly operationRefusals: Counter<"limit">;
  /** Password checks and root recoveries refused because one of the gateway's budgets was full. */
  readonly budgetRefusals: Counter<"budget">;
  /** The label for an operation's first root field: itself, `unknown`, or `other` past the cap. */
  operationLabel(name: string | null | undefined): string;
  refused(limit: OperationLimit): void;
}

export function createGatewayMetrics(options: GatewayMetricsOptions = {}): GatewayMetrics {
  const registry = new Registry();
  const registers = [registry];
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });

  const requestDuration = new Histogram({
    name: "mfa_gateway_graphql_request_duration_seconds",
    help: "GraphQL requests by operation name, operation type and outcome (ok or the first error code)",
    labelNames: ["operation", "type", "outcome"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const verifications = new Counter({
    name: "mfa_gateway_verifications_total",
    help: "Code verifications answered by the auth worker, by mode (login, enrol, resync) and outcome",
    labelNames: ["mode", "outcome"] as const,
    registers,
  });
  const attemptLimitRefusals = new Counter({
    name: "mfa_gateway_attempt_limit_refusals_total",
    help: "Verifications refused because an attempt budget was spent (outcome THROTTLED), by mode",
    labelNames: ["mode"] as const,
    registers,
  });
  const clockOffsets = new Histogram({
    name: "mfa_gateway_device_clock_offset_steps",
    help:
      "How far devices' clocks are from Redis's, in 30 s steps: |drift| of accepted codes " +
      "(outcome OK) and |offset| of codes answered CLOCK_SKEW, by mode; growing upper " +
      "quantiles usually mean ageing hardware tokens or phones without time sync",
    labelNames: ["mode", "outcome"] as const,
    buckets: [0, 1, 2, 3, 5, 10, 20, 40, 60],
    registers,
  });
  const workerCalls = new Histogram({
    name: "mfa_gateway_worker_call_duration_seconds",
    help: "Calls to the auth worker by op and result (ok, unavailable, refused)",
    labelNames: ["op", "result"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 3],
    registers,
  });
  const operationRefusals = new Counter({
    name: "mfa_gateway_operation_refusals_total",
    help: "Requests refused by a limit of the public endpoint before anything ran, by limit",
    labelNames: ["limit"] as const,
    registers,
  });

  const budgetRefusals = new Counter({
    name: "mfa_gateway_budget_refusals_total",
    help: "Password checks and root recoveries refused because a budget was full, by budget",
    labelNames: ["budget"] as const,
    registers,
  });

  if (options.queue) registerQueueGauges(registry, options.queue);

  const maxNames = options.maxOperationNames ?? 100;
  const names = new Set<string>();
  return {
    registry,
    requestDuration,
    verifications,
    attemptLimitRefusals,
    clockOffsets,
    workerCalls,
    operationRefusals,
    budgetRefusals,
    operationLabel(name) {
      if (!name) return "unknown";
      if (names.has(name)) return name;
      if (names.size >= maxNames) return "other";
      names.add(name);
      return name;
    },
    refused: (limit) => operationRefusals.inc({ limit }),
  };
}

/**
 * Gauges read at scrape time: the request stream's length (queued, not yet read by a worker),
 * its pending entries (read, not yet answered) and the workers with a recent heartbeat. A
 * failed read reports NaN for that scrape rather than a stale or made-up number.
 */
function registerQueueGauges(
  registry: Registry,
  queue: NonNullable<GatewayMetricsOptions["queue"]>,
): void {
  const { redis, prefix } = queue;
  const livenessMs = queue.livenessMs ?? 10_000;
  const readTimeoutMs = queue.readTimeoutMs ?? 1000;
  const { requests } = transportKeys(prefix);
  const gauge = (name: string, help: string, read: () => Promise<number>) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        // Redis unreachable or stalled: unknown this scrape, and the rest of the scrape still
        // answers in time; the gateway's /ready says why.
        this.set(await withTimeout(read(), readTimeoutMs).catch(() => NaN));
      },
    });
  gauge("mfa_worker_queue_length", "Entries in the auth worker request stream (XLEN)", () =>
    redis.xLen(requests).then(Number),
  );
  gauge(
    "mfa_worker_queue_pending",
    "Requests a worker has read but not yet answered (XPENDING)",
    async () => {
      try {
        return Number((await redis.xPending(requests, CONSUMER_GROUP)).pending);
      } catch (error) {
        // No stream or group yet: no worker has started, so nothing is pending.
        if (/NOGROUP|no such key/i.test(String(error))) return 0;
        throw error;
      }
    },
  );
  gauge("mfa_workers_live", "Auth workers with a recent heartbeat", () =>
    countLiveWorkers(redis, prefix, livenessMs),
  );
}
