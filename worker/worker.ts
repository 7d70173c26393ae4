/**
 * The auth worker, built but not started: `createWorker(deps)` returns an object, `main.ts` wires
 * configuration into it and starts it, and tests build it the same way with their own handlers.
 *
 * The transport (`transport/consumer.ts`) moves requests; this module dispatches each one to its
 * handler, holds the handler's reply to the contract before it leaves the process, and turns
 * failures into the protocol's closed set of error codes.
 */
import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import { Counter, Histogram, type Registry } from "prom-client";
import { ReplySchemas, type ReplyFor, type WorkerRequest } from "./protocol";
import { UnsealError } from "./seal/keyring";
import {
  createStreamConsumer,
  type ExecutableRequest,
  type ExecutionOutcome,
  type SettledRequest,
  type StreamConsumerOptions,
  type TransportLogger,
} from "./transport/consumer";
import type { TransportRedis } from "./transport/keys";

type RequestFor<Op extends WorkerRequest["op"]> = Extract<WorkerRequest, { op: Op }>;
type Awaitable<T> = T | Promise<T>;

/** What the worker does; ping is answered by the transport itself. */
export interface WorkerHandlers {
  provision(request: RequestFor<"provision">): Awaitable<ReplyFor<"provision">>;
  /** `requestId` lets the verifier make a retried or taken-over request idempotent. */
  verify(request: RequestFor<"verify">, requestId: string): Awaitable<ReplyFor<"verify">>;
  reseal(request: RequestFor<"reseal">): Awaitable<ReplyFor<"reseal">>;
  forget(request: RequestFor<"forget">): Awaitable<ReplyFor<"forget">>;
}

/**
 * Thrown by a handler to answer with a known code. `UnsealError` and any error whose `code` is
 * BAD_REQUEST or UNSEAL_FAILED count too; anything else is logged and masked as UNAVAILABLE.
 */
export class WorkerHandlerError extends Error {
  override readonly name = "WorkerHandlerError";
  constructor(
    readonly code: "BAD_REQUEST" | "UNSEAL_FAILED",
    message: string = code,
  ) {
    super(message);
  }
}

export interface WorkerDeps {
  redis: TransportRedis;
  prefix: string;
  handlers: WorkerHandlers;
  logger: TransportLogger;
  /** Requests run at once; the handlers mostly wait on Redis, so this can exceed the core count. */
  concurrency?: number;
  /** Idle time after which another worker takes over a pending request. */
  claimIdleMs?: number;
  workerId?: string;
  /** How long `stop()` waits for in-flight requests before leaving them to other workers. */
  drainTimeoutMs?: number;
  /** When given, request counts and durations are registered here for `/metrics`. */
  metrics?: Registry;
  /** Transport timings; the defaults suit production, tests shorten them. */
  transport?: Pick<
    StreamConsumerOptions,
    "blockMs" | "heartbeatMs" | "doneTtlMs" | "replyTtlMs" | "consumerRetentionMs"
  >;
}

export interface Worker {
  readonly workerId: string;
  start(): Promise<void>;
  /** Stops taking requests, drains in-flight ones, removes the heartbeat. Leaves Redis open. */
  stop(): Promise<void>;
  /** Local epoch ms of the last heartbeat Redis accepted (0 before the first). */
  lastHeartbeatAt(): number;
}

export function createWorker(deps: WorkerDeps): Worker {
  const { handlers, logger } = deps;
  const workerId = deps.workerId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;

  async function execute(request: ExecutableRequest, requestId: string): Promise<ExecutionOutcome> {
    try {
      const reply = ReplySchemas[request.op].safeParse(
        await dispatch(handlers, request, requestId),
      );
      if (reply.success) return { ok: true, result: reply.data };
      // Stripping to the schema also keeps a stray field (a seed, say) from leaving the process.
      logger.error({ requestId, op: request.op }, "handler reply is outside the contract");
      return { ok: false, error: "UNAVAILABLE" };
    } catch (error) {
      const refusal = knownRefusal(error);
      if (refusal) return { ok: false, error: refusal };
      logger.error({ requestId, op: request.op, err: error }, "handler failed");
      return { ok: false, error: "UNAVAILABLE" };
    }
  }

  const consumer = createStreamConsumer({
    ...deps.transport,
    redis: deps.redis,
    prefix: deps.prefix,
    consumerId: workerId,
    logger,
    concurrency: deps.concurrency,
    claimIdleMs: deps.claimIdleMs,
    execute,
    onSettled: deps.metrics ? requestMetrics(deps.metrics) : undefined,
  });

  return {
    workerId,
    start: () => consumer.start(),
    lastHeartbeatAt: () => consumer.lastHeartbeatAt(),
    async stop() {
      const { drained, abandoned } = await consumer.stop(deps.drainTimeoutMs);
      logger.info({ workerId, drained, abandoned }, "worker stopped");
    },
  };
}

/** Refusals the gateway should see as such; everything else is masked as UNAVAILABLE. */
function knownRefusal(error: unknown): "BAD_REQUEST" | "UNSEAL_FAILED" | undefined {
  if (error instanceof UnsealError) return "UNSEAL_FAILED";
  // WorkerHandlerError, and the verifier's own errors, carry a protocol code.
  const code = (error as { code?: unknown } | null)?.code;
  return code === "BAD_REQUEST" || code === "UNSEAL_FAILED" ? code : undefined;
}

function dispatch(handlers: WorkerHandlers, request: ExecutableRequest, requestId: string) {
  switch (request.op) {
    case "provision":
      return handlers.provision(request);
    case "verify":
      return handlers.verify(request, requestId);
    case "reseal":
      return handlers.reseal(request);
    case "forget":
      return handlers.forget(request);
  }
}

/** Reuses metrics already on the registry, so several workers in one process can share it. */
function requestMetrics(registry: Registry): (event: SettledRequest) => void {
  const requests =
    (registry.getSingleMetric("mfa_worker_requests_total") as Counter<"op" | "outcome">) ??
    new Counter({
      name: "mfa_worker_requests_total",
      help: "Requests the worker settled, by op and outcome (ok, an error code, cached, expired)",
      labelNames: ["op", "outcome"],
      registers: [registry],
    });
  const durations =
    (registry.getSingleMetric("mfa_worker_request_seconds") as Histogram<"op">) ??
    new Histogram({
      name: "mfa_worker_request_seconds",
      help: "Time from reading a request to acknowledging it",
      labelNames: ["op"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    });
  return ({ op, outcome, ms }) => {
    requests.inc({ op, outcome });
    durations.observe({ op }, ms / 1000);
  };
}
