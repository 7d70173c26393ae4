/**
 * The auth worker's Prometheus metrics and its probe listener. Request counts and durations
 * come from the transport (`createWorker({ metrics })`); verification outcomes come from the
 * handlers, which alone see the verdict. Several workers in one process (tests) share one
 * registry, so each metric is reused when it is already there.
 *
 * Only ops, modes and outcomes become labels: never a code, a seed or a device id.
 */
import { createServer, type Server } from "node:http";
import { Counter, type Registry } from "prom-client";
import type { WorkerHandlers } from "./worker";

function counter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
): Counter<L> {
  return (
    (registry.getSingleMetric(name) as Counter<L> | undefined) ??
    new Counter({ name, help, labelNames, registers: [registry] })
  );
}

/** Wraps the handlers so each verification's verdict is counted where it is reached. */
export function instrumentHandlers(handlers: WorkerHandlers, registry: Registry): WorkerHandlers {
  const verifications = counter(
    registry,
    "mfa_worker_verifications_total",
    "Verifications decided, by mode (login, enrol, resync) and outcome (OK, INVALID, REPLAYED, THROTTLED, CLOCK_SKEW)",
    ["mode", "outcome"],
  );
  const refusals = counter(
    registry,
    "mfa_worker_attempt_limit_refusals_total",
    "Verifications refused because the device's or the caller's attempt budget was spent",
    ["mode"],
  );
  return {
    ...handlers,
    async verify(request, requestId) {
      const result = await handlers.verify(request, requestId);
      verifications.inc({ mode: request.mode, outcome: result.outcome });
      if (result.outcome === "THROTTLED") refusals.inc({ mode: request.mode });
      return result;
    },
  };
}

/**
 * /health: the process runs. /readiness: it takes requests, 200 when `readiness()` says
 * "ready", else 503 with its reason. /metrics: Prometheus text.
 */
export function listenForProbes(
  port: number,
  registry: Registry,
  readiness: () => string,
  host?: string,
): Promise<Server> {
  const server = createServer((request, response) => {
    const path = request.url?.split("?")[0];
    if (path === "/metrics") {
      registry.metrics().then(
        (text) => response.writeHead(200, { "content-type": registry.contentType }).end(text),
        () => response.writeHead(500).end(),
      );
      return;
    }
    if (path === "/health") return void response.writeHead(200).end("ok\n");
    if (path === "/readiness") {
      const state = readiness();
      return void response.writeHead(state === "ready" ? 200 : 503).end(`${state}\n`);
    }
    response.writeHead(404).end();
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
