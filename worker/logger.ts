/**
 * The worker's logger: pino, JSON lines, level from configuration.
 *
 * The worker handles seeds and one-time codes, so any field with a secret's name is redacted at
 * every depth a log call is likely to nest it. Code should not log such fields in the first
 * place; this is the net under that rule, not the rule.
 */
import pino, { type DestinationStream, type LevelWithSilent, type Logger } from "pino";

const SECRET_FIELDS = [
  "seed",
  "base32Seed",
  "sealedSeed",
  "code",
  "code1",
  "code2",
  "token",
  "password",
  // The worker's own key material, should anyone log its configuration.
  "SEAL_KEYS",
  "keyringSpec",
];

/** fast-redact has no "any depth" wildcard, so list the depths: top level and three below. */
export const REDACT_PATHS = SECRET_FIELDS.flatMap((field) => [
  field,
  `*.${field}`,
  `*.*.${field}`,
  `*.*.*.${field}`,
]);

export function createLogger(
  name: string,
  level: LevelWithSilent,
  destination?: DestinationStream,
): Logger {
  const options: pino.LoggerOptions = {
    name,
    level,
    redact: { paths: REDACT_PATHS, censor: "[REDACTED]" },
    serializers: { err: serializeError },
  };
  return destination ? pino(options, destination) : pino(options);
}

/**
 * `err.code` falls under the `code` redaction, which would hide ECONNREFUSED and friends; keep
 * a copy as `errorCode` unless it is all digits (and so could be a one-time code).
 */
function serializeError(error: Error & { code?: unknown }) {
  const serialized = pino.stdSerializers.err(error);
  const { code } = error;
  return typeof code === "string" && !/^\d+$/.test(code)
    ? { ...serialized, errorCode: code }
    : serialized;
}
