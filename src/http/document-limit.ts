import type { RequestHandler } from "express";
import { operationLimitExceeded, type OperationLimit } from "../plugins/limit-error";
import { sendApiError } from "./graphql-error-response";

/**
 * Refuses a GraphQL document longer than `maxBytes` before it is parsed. Runs after the JSON
 * body parser; reads the `query` of a POST body (or of each entry of a batch, which Apollo then
 * refuses anyway) and of a GET's query string.
 */
export function documentSizeLimit(
  maxBytes: number,
  onRefused: (limit: OperationLimit) => void = () => {},
): RequestHandler {
  return (req, res, next) => {
    const body: unknown = req.body;
    const documents = [
      ...(Array.isArray(body) ? body : [body]).map(
        (entry) => (entry as { query?: unknown })?.query,
      ),
      req.query?.query,
    ];
    const largest = Math.max(
      0,
      ...documents.map((doc) => (typeof doc === "string" ? Buffer.byteLength(doc) : 0)),
    );
    if (largest <= maxBytes) return next();
    onRefused("DOCUMENT_SIZE");
    sendApiError(
      res,
      400,
      operationLimitExceeded(
        "DOCUMENT_SIZE",
        `The GraphQL document is ${largest} bytes; at most ${maxBytes} are allowed.`,
        maxBytes,
      ),
    );
  };
}
