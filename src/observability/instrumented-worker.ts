/**
 * The worker client as the gateway's services use it, observed: every call's duration and
 * result, and for verifications the worker's verdict, counted where it arrives. It wraps the
 * client rather than the services that call it, so whichever service verifies a code (enrolment,
 * resync, sign-in, step-up), the outcome is counted once, without those services knowing.
 *
 * Requests carry codes and sealed seeds; only the op, the mode and the outcome are looked at.
 */
import { WorkerUnavailableError, type WorkerClient } from "../../worker/client";
import type { VerifyResult, WorkerRequest } from "../../worker/protocol";
import type { GatewayMetrics } from "./metrics";

export function instrumentWorkerClient(
  client: WorkerClient,
  metrics: GatewayMetrics,
): WorkerClient {
  return {
    async call(request, options) {
      const done = metrics.workerCalls.startTimer({ op: request.op });
      try {
        const reply = await client.call(request, options);
        done({ result: "ok" });
        const sent: WorkerRequest = request;
        if (sent.op === "verify") {
          const result = reply as VerifyResult;
          const labels = { mode: sent.mode, outcome: result.outcome };
          metrics.verifications.inc(labels);
          if (result.outcome === "THROTTLED") metrics.attemptLimitRefusals.inc({ mode: sent.mode });
          if (result.outcome === "OK") metrics.clockOffsets.observe(labels, Math.abs(result.drift));
          if (result.outcome === "CLOCK_SKEW")
            metrics.clockOffsets.observe(labels, Math.abs(result.offsetSteps));
        }
        return reply;
      } catch (error) {
        done({ result: error instanceof WorkerUnavailableError ? "unavailable" : "refused" });
        throw error;
      }
    },
    ping: () => client.ping(),
    liveWorkers: (withinMs) => client.liveWorkers(withinMs),
    lastReplyAt: () => client.lastReplyAt(),
    close: () => client.close(),
  };
}
