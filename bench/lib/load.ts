/** HTTP load with autocannon, reported as throughput and latency percentiles. */
import autocannon from "autocannon";

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  max: number;
  /**
   * Responses that were not 2xx or that carried GraphQL `errors` (a GraphQL error still answers
   * 200), plus socket errors and timeouts.
   */
  failures: number;
  /** GraphQL error codes seen in 200 responses, with their counts. */
  errorCodes: Record<string, number>;
  total: number;
}

export interface LoadOptions {
  url: string;
  connections: number;
  durationSeconds: number;
  /** Builds each request's body and headers, e.g. to rotate tokens and codes. */
  nextRequest: () => { body: string; headers?: Record<string, string> };
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  let graphqlErrors = 0;
  const errorCodes: Record<string, number> = {};
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.durationSeconds,
    requests: [
      {
        method: "POST",
        setupRequest: (request) => {
          const next = options.nextRequest();
          return {
            ...request,
            body: next.body,
            headers: { "content-type": "application/json", ...next.headers },
          };
        },
        // A figure made of refusals would be meaningless: every answer is checked for errors.
        onResponse: (status, body) => {
          if (status !== 200 || !body.includes('"errors"')) return;
          graphqlErrors++;
          const code = /"code":"([A-Z_]+)"/.exec(body)?.[1] ?? "UNKNOWN";
          errorCodes[code] = (errorCodes[code] ?? 0) + 1;
        },
      },
    ],
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    max: result.latency.max,
    failures: result.non2xx + result.errors + result.timeouts + graphqlErrors,
    errorCodes,
    total: result.requests.total,
  };
}

/** Runs `redis-benchmark` SET with 50 clients and returns its requests per second. */
export async function redisBenchmarkSetRate(requests = 300_000): Promise<number> {
  const { execFile } = await import("node:child_process");
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      "redis-benchmark",
      ["-h", "127.0.0.1", "-p", "6379", "-t", "set", "-c", "50", "-n", String(requests), "-q"],
      (error, stdout) => (error ? reject(error) : resolve(stdout)),
    ),
  );
  const match = /SET:\s*([\d.]+) requests per second/.exec(out.replace(/\r/g, "\n"));
  if (!match) throw new Error(`could not read redis-benchmark output: ${out.slice(-200)}`);
  return Number(match[1]);
}
