import type { Response } from "express";
import type { ApiError } from "../errors";

/**
 * Answers a request refused before Apollo saw it in the shape Apollo uses for its own refusals
 * (`{ errors: [...] }`, JSON), so clients read one error format whatever refused them.
 */
export function sendApiError(res: Response, status: number, error: ApiError): void {
  const { http: _http, ...extensions } = error.extensions;
  res
    .status(status)
    .type("application/json")
    .send(JSON.stringify({ errors: [{ message: error.message, extensions }] }));
}
