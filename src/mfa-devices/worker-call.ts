/**
 * Calls the auth worker and fails closed: any failure (no worker, no Redis, a deadline, a
 * refused request) becomes SERVICE_UNAVAILABLE, never an acceptance.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { ReplyFor, WorkerOp, WorkerRequest } from "../../worker/protocol";
import { WorkerRequestError, WorkerUnavailableError, type WorkerClient } from "../../worker/client";
import { serviceUnavailable } from "../errors";

/**
 * The worker keeps each answer under its request id, so a request it receives twice (a worker
 * crashed holding it, and another took it over) is decided once. Each call gets an id of its
 * own: the gateway's request id, which the client may choose, joins the logs of both
 * processes but never names the worker request. Were it part of the key, concurrent copies of
 * one HTTP request (same x-request-id, same code) would each be handed the first copy's OK
 * and each mint a session. A client's retry is a new verification: the code it repeats was
 * spent by the first, so the retry is refused as REPLAYED, never granted twice.
 */
export function workerRequestId(gatewayRequestId: string): string {
  return `${gatewayRequestId}:${randomUUID()}`;
}

export async function callWorker<Op extends WorkerOp>(
  worker: WorkerClient,
  logger: Logger,
  request: Extract<WorkerRequest, { op: Op }>,
  gatewayRequestId: string,
): Promise<ReplyFor<Op>> {
  try {
    return await worker.call(request, {
      requestId: workerRequestId(gatewayRequestId),
      logContext: { requestId: gatewayRequestId },
    });
  } catch (error) {
    const detail = {
      op: request.op,
      requestId: gatewayRequestId,
      failure:
        error instanceof WorkerUnavailableError
          ? error.reason
          : error instanceof WorkerRequestError
            ? error.code
            : "UNEXPECTED",
    };
    // A refused request or a seal that will not open is a defect, not an outage: say so loudly.
    if (error instanceof WorkerUnavailableError) logger.warn(detail, "auth worker unavailable");
    else logger.error(detail, "auth worker refused the request");
    throw serviceUnavailable();
  }
}
