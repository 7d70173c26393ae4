/**
 * Calls the auth worker and fails closed: any failure (no worker, no Redis, a deadline, a
 * refused request) becomes SERVICE_UNAVAILABLE, never an acceptance.
 */
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { ReplyFor, WorkerOp, WorkerRequest } from "../../worker/protocol";
import { WorkerRequestError, WorkerUnavailableError, type WorkerClient } from "../../worker/client";
import { serviceUnavailable } from "../errors";

/**
 * The worker keeps each answer under its request id so a retry gets the first answer. The
 * gateway's request id alone is not enough: one GraphQL document may hold several mutations,
 * and a client chooses its own x-request-id, so a second, different request under the same id
 * would be handed the first one's answer. The id therefore also names the request itself: an
 * exact retry maps to the same id, anything else to another. The digest covers the sealed seed,
 * which is random and never logged, so the id reveals nothing about the codes it covers.
 */
export function workerRequestId(gatewayRequestId: string, request: WorkerRequest): string {
  const digest = createHash("sha256").update(JSON.stringify(request)).digest("base64url");
  return `${gatewayRequestId}:${digest.slice(0, 24)}`;
}

export async function callWorker<Op extends WorkerOp>(
  worker: WorkerClient,
  logger: Logger,
  request: Extract<WorkerRequest, { op: Op }>,
  gatewayRequestId: string,
): Promise<ReplyFor<Op>> {
  try {
    return await worker.call(request, {
      requestId: workerRequestId(gatewayRequestId, request),
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
