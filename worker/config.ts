/**
 * The auth worker's configuration: the only reader of process.env in worker/. Every problem is
 * reported together, so one failed start shows everything to fix.
 *
 * The sealing keyring is the worker's one secret. Outside development and test the worker
 * refuses to start without SEAL_KEYS, and refuses the development key. NODE_ENV defaults to
 * production for the same reason: forgetting it must not quietly seal seeds with a public key.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { parseKeyring } from "./seal/keyring";
import { parsePolicy, type VerifyPolicyInput } from "./verify/policy";

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const RuntimeSchema = z.object({
  NODE_ENV: z.enum(["development", "test", "production"]).default("production"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});

const RedisSchema = z.object({
  REDIS_URL: z.string().url().default("redis://127.0.0.1:6379"),
  /** Comma-separated host:port seed nodes; when set the worker talks to a Redis Cluster. */
  REDIS_CLUSTER_NODES: z
    .string()
    .regex(/^[^\s,:]+:\d{1,5}(,[^\s,:]+:\d{1,5})*$/, "expected host:port[,host:port…]")
    .optional(),
  /** Shared with the gateway; no braces, which would break the transport's hash tag. */
  REDIS_PREFIX: z
    .string()
    .regex(/^[\w.-]+$/, "letters, digits, _ . - only")
    .default("mfa"),
});

const SealSchema = z.object({
  /** `kid:<base64 of 32 bytes>,…`; the first entry seals unless SEAL_CURRENT_KEY_ID says. */
  SEAL_KEYS: z.string().optional(),
  SEAL_CURRENT_KEY_ID: z.string().optional(),
});

const WorkerSchema = z.object({
  WORKER_CONCURRENCY: int(1, 1024).default(32),
  /** Must stay well under the gateway's WORKER_DEADLINE_MS, or takeovers come too late. */
  WORKER_CLAIM_IDLE_MS: int(100, 60_000).default(1000),
  /** Port for /metrics, /health and /readiness; 0 disables the listener. */
  WORKER_METRICS_PORT: int(0, 65535).default(9464),
  /**
   * Address the probe listener binds: loopback by default, like the gateway's HOST, since it
   * is unauthenticated; `0.0.0.0` (or `::`) where an orchestrator probes the worker from outside.
   */
  WORKER_METRICS_HOST: z.string().min(1).default("127.0.0.1"),
  /**
   * Overrides of the verification policy as JSON, e.g. `{"enrolRadius":20,"pairFree":5}`; the
   * names and defaults are those of worker/verify/policy.ts. Unknown names are refused.
   */
  VERIFY_POLICY: z
    .string()
    .optional()
    .transform((text, ctx) => {
      if (text === undefined) return {};
      try {
        return parsePolicy(JSON.parse(text) as VerifyPolicyInput);
      } catch (error) {
        const detail =
          error instanceof z.ZodError
            ? error.issues.map((i) => `${i.path.join(".")} ${i.message}`).join("; ")
            : "not valid JSON";
        ctx.addIssue({ code: "custom", message: detail });
        return z.NEVER;
      }
    }),
});

/**
 * A fixed development key derived from a public constant, so sealed seeds stay readable across
 * restarts of a development worker. Anyone can derive it: it protects nothing, hence the name.
 */
const DEVELOPMENT_KEY_ID = "dev-insecure";
const DEVELOPMENT_KEY = createHash("sha256")
  .update("virtual-mfa development seal key; public; never use outside development and test")
  .digest();
const DEVELOPMENT_KEYRING_SPEC = `${DEVELOPMENT_KEY_ID}:${DEVELOPMENT_KEY.toString("base64")}`;

export const DEVELOPMENT_KEY_WARNING =
  `WARNING: SEAL_KEYS is not set, so seeds are sealed with the public development key ` +
  `"${DEVELOPMENT_KEY_ID}". Anyone can unseal them. Set SEAL_KEYS before storing real devices.`;

const WorkerConfigSchema = z
  .object({
    ...RuntimeSchema.shape,
    ...RedisSchema.shape,
    ...SealSchema.shape,
    ...WorkerSchema.shape,
  })
  .superRefine((config, ctx) => {
    const problem = (path: string, message: string) =>
      ctx.addIssue({ code: "custom", path: [path], message });
    const production = config.NODE_ENV === "production";
    if (config.SEAL_KEYS === undefined) {
      if (production)
        problem("SEAL_KEYS", "required outside development and test (kid:<base64 of 32 bytes>,…)");
      if (config.SEAL_CURRENT_KEY_ID)
        problem("SEAL_CURRENT_KEY_ID", "names a key but SEAL_KEYS is not set");
      return;
    }
    let keyIds: readonly string[] = [];
    try {
      keyIds = parseKeyring(config.SEAL_KEYS).keyIds;
    } catch (error) {
      // The keyring's messages name entries by position and never echo key material.
      problem("SEAL_KEYS", (error as Error).message);
    }
    if (
      config.SEAL_CURRENT_KEY_ID &&
      keyIds.length > 0 &&
      !keyIds.includes(config.SEAL_CURRENT_KEY_ID)
    ) {
      problem("SEAL_CURRENT_KEY_ID", "is not one of the key ids in SEAL_KEYS");
    }
    if (
      production &&
      keyEntries(config.SEAL_KEYS).some((entry) => entry.key.equals(DEVELOPMENT_KEY))
    ) {
      problem("SEAL_KEYS", "contains the public development key, which is refused in production");
    }
  })
  .transform(({ SEAL_KEYS, SEAL_CURRENT_KEY_ID, ...rest }) => ({
    ...rest,
    /** The keyring spec with the current key first, as `parseKeyring` expects. */
    keyringSpec:
      SEAL_KEYS === undefined
        ? DEVELOPMENT_KEYRING_SPEC
        : currentFirst(SEAL_KEYS, SEAL_CURRENT_KEY_ID),
    usesDevelopmentKey: SEAL_KEYS === undefined,
  }));

export type WorkerConfig = z.infer<typeof WorkerConfigSchema>;

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly problems: string[]) {
    super(`Invalid worker configuration:\n  ${problems.join("\n  ")}`);
  }
}

/** Parses an environment; throws one ConfigError listing every problem. */
export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  // `FOO=` counts as unset, so defaults apply.
  const present = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ""),
  );
  const parsed = WorkerConfigSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`),
    );
  }
  return parsed.data;
}

function keyEntries(spec: string): Array<{ keyId: string; text: string; key: Buffer }> {
  return spec
    .split(",")
    .map((text) => text.trim())
    .filter(Boolean)
    .map((text) => {
      const separator = text.indexOf(":");
      return {
        keyId: text.slice(0, separator),
        text,
        key: Buffer.from(text.slice(separator + 1), "base64"),
      };
    });
}

function currentFirst(spec: string, currentKeyId: string | undefined): string {
  const entries = keyEntries(spec);
  const current = entries.filter((entry) => entry.keyId === currentKeyId);
  const others = entries.filter((entry) => entry.keyId !== currentKeyId);
  return [...current, ...others].map((entry) => entry.text).join(",");
}
