/**
 * The gateway's configuration: the only reader of process.env in src/. Every variable is
 * documented in the README; every failure is reported together before the process exits.
 */
import { z } from "zod";
import ipaddr from "ipaddr.js";
import proxyaddr from "proxy-addr";

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((v) => v === "true" || v === "1" || v === "yes");
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/virtual_mfa";

/** Express's names for address ranges in `trust proxy`. */
const PROXY_RANGE_NAMES = new Set(["loopback", "linklocal", "uniquelocal"]);
/** A literal address: four-part dotted IPv4 or IPv6, not ipaddr.js's lenient forms ("11"). */
const isLiteralAddress = (text: string) =>
  ipaddr.IPv4.isValidFourPartDecimal(text) || ipaddr.IPv6.isValid(text);
const isProxyAddress = (entry: string) => {
  if (PROXY_RANGE_NAMES.has(entry) || isLiteralAddress(entry)) return true;
  const [address, bits, ...rest] = entry.split("/");
  if (rest.length > 0 || !address || !bits || !/^\d{1,3}$/.test(bits)) return false;
  const max = ipaddr.IPv4.isValidFourPartDecimal(address) ? 32 : 128;
  return isLiteralAddress(address) && Number(bits) <= max;
};

/** What Express itself will accept: it refuses `/0` (trusting every address is never meant). */
const compilesAsProxy = (entry: string) => {
  try {
    proxyaddr.compile(entry);
    return true;
  } catch {
    return false;
  }
};

/**
 * Which proxies' X-Forwarded-For to believe: a hop count (0: none, the socket's peer is the
 * client), or the proxies' own addresses and CIDR ranges, which is safer: with a hop count, a
 * client that reaches the gateway directly names its own source and escapes per-source budgets.
 */
const trustProxy = z
  .string()
  .default("0")
  .transform((text, ctx): number | string[] => {
    const trimmed = text.trim();
    if (/^\d+$/.test(trimmed) && Number(trimmed) <= 10) return Number(trimmed);
    const entries = trimmed.split(",").map((entry) => entry.trim());
    const bad = entries.filter((entry) => !isProxyAddress(entry) || !compilesAsProxy(entry));
    if (bad.length > 0 || entries.length === 0) {
      ctx.addIssue({
        code: "custom",
        message:
          "a hop count from 0 to 10, or proxy addresses, CIDR ranges, loopback, linklocal or uniquelocal, comma-separated",
      });
      return z.NEVER;
    }
    return entries;
  });

/** `https://app.example.com,http://localhost:3000`: origins exactly as browsers send them. */
const originList = z
  .string()
  .default("")
  .transform((text) =>
    text
      .split(",")
      .map((o) => o.trim())
      .filter(Boolean),
  )
  .pipe(
    z.array(
      z
        .string()
        .refine(
          (origin) => origin === "*" || /^https?:\/\/[^/\s]+$/.test(origin),
          "each origin is scheme://host[:port] with no path, or *",
        ),
    ),
  );

const GatewayConfigSchema = z.object({
  NODE_ENV: z.enum(["development", "test", "production"]).default("development"),
  HOST: z.string().default("127.0.0.1"),
  PORT: int(0, 65535).default(4000),
  DATABASE_URL: z.string().url().default(DEFAULT_DATABASE_URL),
  DATABASE_POOL_SIZE: int(1, 200).default(10),
  REDIS_URL: z.string().url().default("redis://127.0.0.1:6379"),
  REDIS_CLUSTER_NODES: z.string().optional(),
  REDIS_PREFIX: z
    .string()
    .regex(/^[\w.-]+$/)
    .default("mfa"),
  WORKER_DEADLINE_MS: int(100, 60_000).default(3000),
  /** Seconds a worker heartbeat counts as recent for /ready. */
  WORKER_LIVENESS_SECONDS: int(1, 600).default(10),
  SESSION_TTL_SECONDS: int(60, 7 * 24 * 3600).default(12 * 3600),
  MFA_ISSUER: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[^:]+$/, "must not contain a colon")
    .default("Virtual MFA"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** Whose X-Forwarded-For names the caller: a hop count, or the proxies' addresses (above). */
  TRUST_PROXY: trustProxy,
  SHUTDOWN_GRACE_MS: int(0, 120_000).default(10_000),

  // The public endpoint. Every limit refuses with BAD_USER_INPUT (HTTP 400, or 413 for the body)
  // before anything runs; `extensions.limit` names the limit that refused.
  /** Serve GraphiQL to browsers on GET /graphql. Default: on, except in production. */
  GRAPHQL_IDE: bool.optional(),
  /** Answer introspection queries. Default: on, except in production. The IDE needs it. */
  GRAPHQL_INTROSPECTION: bool.optional(),
  /** Deepest field nesting an operation may select (introspection fields are not counted). */
  GRAPHQL_MAX_DEPTH: int(2, 100).default(10),
  /** Largest cost an operation may have: see src/plugins/use-cost-limit.ts for the scale. */
  GRAPHQL_MAX_COST: int(1, 10_000_000).default(10_000),
  /** Cost of each code-checking mutation (enable, resync, rotate, sign-in, challenge, STS). */
  GRAPHQL_VERIFICATION_COST: int(1, 10_000_000).default(3_000),
  /** Aliased fields an operation may hold, counting each use of a fragment. */
  GRAPHQL_MAX_ALIASES: int(0, 1000).default(10),
  /** Top-level fields an operation may select (each is a query or a mutation of its own). */
  GRAPHQL_MAX_ROOT_FIELDS: int(1, 1000).default(10),
  /** Longest GraphQL document (the `query` text), in bytes. */
  GRAPHQL_MAX_DOCUMENT_BYTES: int(256, 1_000_000).default(8192),
  /** Most lexical tokens the parser reads before giving up; bounds parse and validation work. */
  GRAPHQL_MAX_TOKENS: int(100, 100_000).default(1000),
  /** Largest request body Express parses, in bytes; larger bodies get 413. */
  HTTP_BODY_LIMIT_BYTES: int(1024, 10_000_000).default(100 * 1024),
  /** Origins browsers may call /graphql from (comma-separated, or `*`). Default: none. */
  CORS_ORIGINS: originList,
  /** Serve Prometheus metrics on GET /metrics. */
  METRICS_ENABLED: bool.default(true),
  /**
   * Port of a listener of its own for /metrics, which then leaves the public port: metrics
   * tell anyone who can read them how often each limit refuses. 0: on the public port.
   * Default: 9465 in production, else 0.
   */
  METRICS_PORT: int(0, 65535).optional(),
  /** Address that listener binds: loopback, like HOST; `0.0.0.0` where it is scraped from outside. */
  METRICS_HOST: z.string().min(1).default("127.0.0.1"),
  /** Distinct operation names given their own latency series; later names share `other`. */
  METRICS_MAX_OPERATION_NAMES: int(0, 10_000).default(100),
  /**
   * How long one answer of /ready and one render of /metrics is shared by every request (0: each
   * request probes). They are on the public port, so a flood of them costs one probe per window.
   */
  PROBE_CACHE_MS: int(0, 60_000).default(1000),

  // Sign-up (src/accounts/account.service.ts).
  /**
   * createAccount calls one source (IP; IPv6: its /64, with 4 times as many per /48) may make
   * per window, whether or not they create an account.
   */
  ACCOUNT_SIGNUPS_PER_SOURCE: int(1, 1_000_000).default(10),
  /** Length of that window. */
  ACCOUNT_SIGNUP_WINDOW_SECONDS: int(60, 30 * 24 * 3600).default(3600),

  // Sign-in with MFA, step-up and recovery (src/auth, src/recovery).
  /** Wrong passwords one source (IP) may try for one user per window (src/auth/password-attempts.ts). */
  PASSWORD_FAILURES_PER_USER_AND_SOURCE: int(1, 100_000).default(10),
  /** Wrong passwords one source may try over all users per window. */
  PASSWORD_FAILURES_PER_SOURCE: int(1, 1_000_000).default(100),
  /** Length of the password failure windows; a full budget has room again when its window ends. */
  PASSWORD_FAILURE_WINDOW_SECONDS: int(1, 24 * 3600).default(900),
  /** How long an MFA challenge from signIn may be answered. */
  MFA_CHALLENGE_TTL_SECONDS: int(30, 3600).default(300),
  /** Wrong codes one MFA challenge takes before it is void and sign-in starts again. */
  MFA_CHALLENGE_MAX_FAILURES: int(1, 20).default(5),
  /** Tell the user after every this many wrong MFA codes in a row after a correct password. */
  MFA_FAILURE_NOTIFY_EVERY: int(1, 1000).default(5),
  /**
   * Key of the HMAC that recovery codes and root recovery codes are stored under, so a copy of
   * the database alone cannot test guesses. Required in production; at least 32 characters.
   */
  RECOVERY_CODE_PEPPER: z.string().min(32).optional(),
  /** How long the one-time codes of a root recovery stay valid. */
  ROOT_RECOVERY_TTL_SECONDS: int(60, 3600).default(600),
  /** Wrong answers one root recovery takes before it is void. */
  ROOT_RECOVERY_MAX_FAILURES: int(1, 10).default(5),
  /** Least time between two root recoveries of one account, so codes cannot be sent in a flood. */
  ROOT_RECOVERY_COOLDOWN_SECONDS: int(0, 3600).default(60),
  /**
   * Root recoveries (each an email and a text message) one email address or phone number may
   * receive per window: from each account older than ROOT_RECOVERY_NEW_ACCOUNT_DAYS, and from
   * all younger accounts together.
   */
  ROOT_RECOVERY_SENDS_PER_RECIPIENT: int(1, 100_000).default(5),
  /** Accounts younger than this many days share each recipient's recovery budget. */
  ROOT_RECOVERY_NEW_ACCOUNT_DAYS: int(0, 365).default(7),
  /** Root recoveries one source (IP) may start per window, over all accounts. */
  ROOT_RECOVERY_SENDS_PER_SOURCE: int(1, 100_000).default(10),
  /**
   * Root recoveries all accounts younger than ROOT_RECOVERY_NEW_ACCOUNT_DAYS together may start
   * per window: a cap on what text messages can cost when many sources pump SMS through fresh
   * accounts. Reaching it refuses those accounts' recoveries until the window ends (older
   * accounts never meet it), so alert on
   * mfa_gateway_budget_refusals_total{budget="recovery_service_wide"}.
   */
  ROOT_RECOVERY_SENDS_SERVICE_WIDE: int(1, 100_000_000).default(1000),
  /** Length of those windows. */
  ROOT_RECOVERY_SEND_WINDOW_SECONDS: int(60, 30 * 24 * 3600).default(24 * 3600),
  /** New sets of recovery codes one user may generate per hour (each one mails a notice). */
  RECOVERY_CODE_SETS_PER_HOUR: int(1, 10_000).default(5),
  /** Life of the session a completed root recovery gives (it may only replace root's device). */
  RECOVERY_SESSION_TTL_SECONDS: int(60, 3600).default(900),

  // The notification outbox (src/notifications).
  /** Run the outbox sender in this gateway process; any number of gateways may run it. */
  OUTBOX_SENDER_ENABLED: bool.default(true),
  /** How often the sender looks for messages that are due. */
  OUTBOX_POLL_INTERVAL_MS: int(50, 60_000).default(1000),
  /** Delivery attempts per message before it is marked failed. */
  OUTBOX_MAX_ATTEMPTS: int(1, 50).default(8),
  /** smtp://user:pass@host:port or smtps://…; without it, email is written to the log only. */
  SMTP_URL: z.string().url().optional(),
  /** The From header of the emails sent. */
  SMTP_FROM: z.string().min(3).max(256).default("Virtual MFA <no-reply@localhost>"),
  /** SMS are POSTed here as JSON {id, to, body}; without it, SMS are written to the log only. */
  SMS_WEBHOOK_URL: z.string().url().optional(),
  /**
   * A production gateway that runs the outbox sender requires SMTP_URL and SMS_WEBHOOK_URL:
   * messages carry root recovery codes and security notices, and written to the log only they
   * reach nobody. `true` accepts that knowingly (a staging system, say); the gateway then says
   * so in an error at startup.
   */
  NOTIFICATIONS_LOG_ONLY: bool.default(false),

  // Deleting rows whose life has ended (src/maintenance/expired-rows.ts).
  /** Run the cleaner in this gateway process; any number of gateways may run it. */
  EXPIRED_ROWS_CLEANUP_ENABLED: bool.default(true),
  /** How often the cleaner runs. */
  EXPIRED_ROWS_CLEANUP_INTERVAL_SECONDS: int(10, 7 * 24 * 3600).default(3600),
  /**
   * How long ended rows are kept before they are deleted: sessions and MFA challenges and root
   * recoveries past their expiry, outbox messages sent or failed.
   */
  EXPIRED_ROWS_RETENTION_HOURS: int(1, 24 * 366).default(7 * 24),
  /**
   * How long audit events of no account are kept: failed sign-ins naming an account that does not
   * exist, which anyone can add. An account's own audit log is never deleted.
   */
  ANONYMOUS_AUDIT_RETENTION_DAYS: int(1, 3660).default(90),
});

/**
 * Used outside production when RECOVERY_CODE_PEPPER is unset. It is public, so it protects
 * nothing: production refuses to start without a pepper of its own.
 */
export const DEV_RECOVERY_CODE_PEPPER = "INSECURE-development-only-recovery-code-pepper";

/** What the NODE_ENV-dependent switches resolve to, after everything else has parsed. */
const ResolvedGatewayConfigSchema = GatewayConfigSchema.transform((config, ctx) => {
  const production = config.NODE_ENV === "production";
  const resolved = {
    ...config,
    GRAPHQL_IDE: config.GRAPHQL_IDE ?? !production,
    GRAPHQL_INTROSPECTION: config.GRAPHQL_INTROSPECTION ?? !production,
    METRICS_PORT: config.METRICS_PORT ?? (production ? 9465 : 0),
    RECOVERY_CODE_PEPPER: config.RECOVERY_CODE_PEPPER ?? DEV_RECOVERY_CODE_PEPPER,
  };
  if (production && config.RECOVERY_CODE_PEPPER === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["RECOVERY_CODE_PEPPER"],
      message: "required in production (at least 32 random characters)",
    });
  }
  // Only where this process delivers: gateways with the sender off leave it to others.
  if (production && config.OUTBOX_SENDER_ENABLED && !config.NOTIFICATIONS_LOG_ONLY) {
    for (const key of ["SMTP_URL", "SMS_WEBHOOK_URL"] as const) {
      if (config[key] !== undefined) continue;
      ctx.addIssue({
        code: "custom",
        path: [key],
        message:
          "required in production: without it recovery codes and security notices are only " +
          "logged (set NOTIFICATIONS_LOG_ONLY=true to accept that)",
      });
    }
  }
  // Its messages carry root recovery codes: in production they do not cross a network in clear.
  if (
    production &&
    config.SMS_WEBHOOK_URL &&
    new URL(config.SMS_WEBHOOK_URL).protocol !== "https:"
  ) {
    ctx.addIssue({
      code: "custom",
      path: ["SMS_WEBHOOK_URL"],
      message: "must be https:// in production: the messages carry one-time codes",
    });
  }
  if (resolved.GRAPHQL_IDE && !resolved.GRAPHQL_INTROSPECTION) {
    ctx.addIssue({
      code: "custom",
      path: ["GRAPHQL_IDE"],
      message: "the IDE needs GRAPHQL_INTROSPECTION; turn both on or the IDE off",
    });
  }
  return resolved;
});

export type GatewayConfig = z.infer<typeof ResolvedGatewayConfigSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join("\n  ")}`);
  }
}

/** Parses an environment; throws one ConfigError listing every problem. */
export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const parsed = ResolvedGatewayConfigSchema.safeParse(withoutEmpty(env));
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
