import type { ErrorRequestHandler } from "express";
import type { Logger } from "pino";
import { ApiError, badInput, ErrorCode } from "../errors";
import { operationLimitExceeded, type OperationLimit } from "../plugins/limit-error";
import { sendApiError } from "./graphql-error-response";
import { requestIdOf } from "./request-id";

/** What body-parser (express.json) reports, beside the status it suggests. */
interface BodyParserError {
  type?: string;
  status?: number;
  limit?: number;
  /** http-errors' mark of an error whose message is meant for the client. */
  expose?: boolean;
}

function isClientFault(error: unknown): boolean {
  const { status, expose } = (error ?? {}) as BodyParserError;
  return expose === true && typeof status === "number" && status >= 400 && status < 500;
}

/**
 * Express's default error handler answers in HTML. This one answers a body the JSON parser
 * refused, and anything else that escapes a handler, with the typed errors GraphQL clients
 * read: an oversized body is 413 BAD_USER_INPUT naming the limit, malformed JSON 400, an
 * unsupported charset 415; anything unexpected is masked as 500 and logged.
 */
export function httpErrorHandler(
  logger: Logger,
  onRefused: (limit: OperationLimit) => void = () => {},
): ErrorRequestHandler {
  return (error: unknown, _req, res, next) => {
    if (res.headersSent) return next(error);
    const { type, limit } = (error ?? {}) as BodyParserError;
    switch (type) {
      case "entity.too.large":
        onRefused("BODY_SIZE");
        return sendApiError(
          res,
          413,
          operationLimitExceeded(
            "BODY_SIZE",
            `The request body is larger than the limit of ${limit} bytes.`,
            Number(limit),
          ),
        );
      case "entity.parse.failed":
        return sendApiError(res, 400, badInput("The request body is not valid JSON."));
      case "encoding.unsupported":
      case "charset.unsupported":
        return sendApiError(res, 415, badInput("The request body's encoding is not supported."));
      case "request.aborted":
      case "request.size.invalid":
      case "stream.encoding.set":
        return sendApiError(res, 400, badInput("The request body could not be read."));
    }
    // Other refusals of the body (a compressed body that does not inflate, for one) come with
    // no type, only a client status body-parser marks as safe to show.
    if (isClientFault(error)) {
      return sendApiError(res, 400, badInput("The request body could not be read."));
    }
    logger.error({ err: error, requestId: requestIdOf(res) }, "unexpected error in the HTTP layer");
    sendApiError(
      res,
      500,
      new ApiError(ErrorCode.INTERNAL_SERVER_ERROR, "Internal server error.", {
        iamCode: "ServiceFailure",
      }),
    );
  };
}
