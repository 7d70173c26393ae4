/**
 * Closed-loop load inside this process: each lane sends its next call as soon as its last one
 * has answered, so `lanes` is the number of calls in flight. Used by the Redis-path workloads,
 * where there is no HTTP for autocannon to drive.
 */
import { performance } from "node:perf_hooks";

export interface LaneResult {
  calls: number;
  /** Calls answered per second. */
  rps: number;
  /** Latencies in milliseconds. */
  p50: number;
  p99: number;
  max: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Runs `call(lane)` back to back in `lanes` lanes until `durationMs` has passed. */
export async function runLanes(
  lanes: number,
  durationMs: number,
  call: (lane: number) => Promise<unknown>,
): Promise<LaneResult> {
  const latencies: number[] = [];
  const startedAt = performance.now();
  const endAt = startedAt + durationMs;
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      while (performance.now() < endAt) {
        const sentAt = performance.now();
        await call(lane);
        latencies.push(performance.now() - sentAt);
      }
    }),
  );
  const seconds = (performance.now() - startedAt) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    calls: latencies.length,
    rps: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1] ?? NaN,
  };
}
