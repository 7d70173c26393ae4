import { randomUUID } from "node:crypto";
import type { RequestHandler } from "express";

/** Short enough for log fields and the worker's own ids, free of anything but [A-Za-z0-9_.-]. */
export const REQUEST_ID_PATTERN = /^[\w.-]{1,64}$/;

/**
 * Gives every request an id before anything else runs, so refusals (CSRF, oversized bodies)
 * are traceable too. A caller's own `x-request-id` is kept when it is a sane token, letting a
 * client or proxy follow its request into the gateway's and the auth worker's logs. The id is
 * echoed in the response's `x-request-id`.
 */
export function requestId(): RequestHandler {
  return (req, res, next) => {
    const incoming = req.get("x-request-id");
    const id = incoming && REQUEST_ID_PATTERN.test(incoming) ? incoming : randomUUID();
    res.locals.requestId = id;
    res.setHeader("x-request-id", id);
    next();
  };
}

export const requestIdOf = (res: { locals: Record<string, unknown> }): string =>
  String(res.locals.requestId);
