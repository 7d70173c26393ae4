/**
 * The gateway's configuration: the only reader of process.env in src/. Every variable is
 * documented in the README; every failure is reported together before the process exits.
 */
import { z } from "zod";

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((v) => v === "true" || v === "1" || v === "yes");
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/virtual_mfa";

const GatewayConfigSchema = z.object({
  NODE_ENV: z.enum(["development", "test", "production"]).default("development"),
  HOST: z.string().default("127.0.0.1"),
  PORT: int(0, 65535).default(4000),
  DATABASE_URL: z.string().url().default(DEFAULT_DATABASE_URL),
  DATABASE_POOL_SIZE: int(1, 200).default(10),
  REDIS_URL: z.string().url().default("redis://127.0.0.1:6379"),
  REDIS_CLUSTER_NODES: z.string().optional(),
  REDIS_PREFIX: z.string().regex(/^[\w.-]+$/).default("mfa"),
  WORKER_DEADLINE_MS: int(100, 60_000).default(3000),
  /** Seconds a worker heartbeat counts as recent for /ready. */
  WORKER_LIVENESS_SECONDS: int(1, 600).default(10),
  SESSION_TTL_SECONDS: int(60, 7 * 24 * 3600).default(12 * 3600),
  MFA_ISSUER: z.string().min(1).max(64).regex(/^[^:]+$/, "must not contain a colon").default("Virtual MFA"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** Trust X-Forwarded-For from this many proxies when deriving the caller's address. */
  TRUST_PROXY: int(0, 10).default(0),
  SHUTDOWN_GRACE_MS: int(0, 120_000).default(10_000),
});

export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join("\n  ")}`);
  }
}

/** Parses an environment; throws one ConfigError listing every problem. */
export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const parsed = GatewayConfigSchema.safeParse(withoutEmpty(env));
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`));
  }
  return parsed.data;
}

/** Treats `FOO=` like an unset variable, so defaults apply. */
export function withoutEmpty(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ""),
  );
}

export { bool as booleanFlag };
