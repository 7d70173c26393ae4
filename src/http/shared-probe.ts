/**
 * Runs `probe` at most once per `windowMs`: every caller while a run is in flight, and every
 * caller within `windowMs` after it settled, gets that run's result (a failure included).
 *
 * /ready and /metrics sit on the public API port. Uncached, each request cost a PostgreSQL query
 * and Redis reads (or a full metrics render with its Redis reads), so a flood of them cost more
 * than the same flood of GraphQL. Shared, a flood costs one probe per window. Hand-written
 * rather than a memoizing library: it is these few lines, and the semantics (share in-flight
 * runs, keep failures too) are the point.
 */
export function sharedFor<T>(windowMs: number, probe: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | undefined;
  let last: { settledAt: number; result: Promise<T> } | undefined;
  return () => {
    if (inFlight) return inFlight;
    if (last && performance.now() - last.settledAt < windowMs) return last.result;
    const run = probe();
    inFlight = run;
    const settle = () => {
      inFlight = undefined;
      last = { settledAt: performance.now(), result: run };
    };
    run.then(settle, settle);
    return run;
  };
}
