import cors from "cors";
import type { RequestHandler } from "express";

/**
 * CORS for the GraphQL endpoint, from configuration: only the listed origins (or any, with
 * `*`) get `Access-Control-Allow-Origin`; others get no CORS headers and the browser keeps the
 * response from them. No cookies are involved (sessions are bearer tokens), so credentials stay
 * off. With no origins listed, only same-origin pages can read answers.
 */
export function corsFor(origins: readonly string[]): RequestHandler[] {
  const anyOrigin = origins.includes("*");
  const allowed = new Set(origins);
  const allowListed = cors({
    origin: (origin, callback) =>
      callback(null, origin !== undefined && (anyOrigin || allowed.has(origin)) ? origin : false),
    methods: ["GET", "POST", "OPTIONS"],
    allowedHeaders: [
      "authorization",
      "content-type",
      "x-request-id",
      "apollo-require-preflight",
      "x-apollo-operation-name",
    ],
    exposedHeaders: ["x-request-id"],
    maxAge: 600,
  });
  // A preflight from an origin not listed passes through `cors` untouched and would reach
  // Apollo, which refuses it as a CSRF attempt with a GraphQL error. It is answered here
  // instead, plainly and without CORS headers, which is all a browser needs to refuse it.
  const endOtherPreflights: RequestHandler = (req, res, next) => {
    if (req.method === "OPTIONS") res.sendStatus(204);
    else next();
  };
  return [allowListed, endOtherPreflights];
}
