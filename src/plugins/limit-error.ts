import { ApiError, ErrorCode } from "../errors";

/** The limits an operation can break; `extensions.limit` on the refusal names which one. */
export type OperationLimit =
  "DOCUMENT_SIZE" | "BODY_SIZE" | "DEPTH" | "ALIASES" | "ROOT_FIELDS" | "COST";

/**
 * A refusal of the operation as written: BAD_USER_INPUT (HTTP 400) with AWS's ValidationError
 * name, the limit and its maximum, so a client can tell what to change. Nothing has run.
 */
export function operationLimitExceeded(
  limit: OperationLimit,
  message: string,
  maximum: number,
): ApiError {
  return new ApiError(ErrorCode.BAD_USER_INPUT, message, {
    iamCode: "ValidationError",
    extensions: { limit, maximum },
  });
}
