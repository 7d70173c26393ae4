import pino, { type Logger } from "pino";

/** Any field with one of these names is replaced before a line is written. */
export const REDACTED_FIELDS = [
  "password",
  "currentPassword",
  "newPassword",
  "token",
  "authorization",
  "seed",
  "base32Seed",
  "base32StringSeed",
  "sealedSeed",
  "qrCodePng",
  "otpauthUri",
  "code",
  "code1",
  "code2",
  "authenticationCode1",
  "authenticationCode2",
  "tokenCode",
  "challenge",
  "recoveryCode",
  "variables",
];

export function createLogger(
  name: string,
  level: string,
  destination?: pino.DestinationStream,
): Logger {
  return pino(
    {
      name,
      level,
      redact: {
        paths: REDACTED_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]),
        censor: "[redacted]",
      },
      base: { service: name },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
