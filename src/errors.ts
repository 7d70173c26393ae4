/**
 * One closed set of error codes. Every error a client sees carries `extensions.code` from
 * ErrorCode and, where AWS has a name for it, `extensions.iamCode` with AWS's message.
 */
import { GraphQLError, type GraphQLFormattedError } from "graphql";
import { unwrapResolverError } from "@apollo/server/errors";

export enum ErrorCode {
  BAD_USER_INPUT = "BAD_USER_INPUT",
  UNAUTHENTICATED = "UNAUTHENTICATED",
  FORBIDDEN = "FORBIDDEN",
  NOT_FOUND = "NOT_FOUND",
  ALREADY_EXISTS = "ALREADY_EXISTS",
  LIMIT_EXCEEDED = "LIMIT_EXCEEDED",
  DELETE_CONFLICT = "DELETE_CONFLICT",
  INVALID_AUTHENTICATION_CODE = "INVALID_AUTHENTICATION_CODE",
  RATE_LIMITED = "RATE_LIMITED",
  SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE",
  INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR",
}

const ERROR_CODES = new Set<string>(Object.values(ErrorCode));

/** HTTP status AWS uses for each code; Apollo sets it on single-error responses. */
const HTTP_STATUS: Record<ErrorCode, number> = {
  BAD_USER_INPUT: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  LIMIT_EXCEEDED: 409,
  DELETE_CONFLICT: 409,
  INVALID_AUTHENTICATION_CODE: 403,
  RATE_LIMITED: 429,
  SERVICE_UNAVAILABLE: 503,
  INTERNAL_SERVER_ERROR: 500,
};

export interface ApiErrorOptions {
  iamCode?: string;
  /** Extra, non-secret extensions such as retryAfterSeconds or offsetSteps. */
  extensions?: Record<string, unknown>;
}

export class ApiError extends GraphQLError {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options: ApiErrorOptions = {},
  ) {
    super(message, {
      extensions: {
        code,
        ...(options.iamCode ? { iamCode: options.iamCode } : {}),
        ...options.extensions,
        http: { status: HTTP_STATUS[code] },
      },
    });
  }
}

export const badInput = (message: string, iamCode = "ValidationError") =>
  new ApiError(ErrorCode.BAD_USER_INPUT, message, { iamCode });
export const unauthenticated = (message = "A valid session is required.") =>
  new ApiError(ErrorCode.UNAUTHENTICATED, message);
/** The same message for every denial, so a refusal never says whether the target exists. */
export const forbidden = () =>
  new ApiError(ErrorCode.FORBIDDEN, "You are not allowed to perform this operation.", {
    iamCode: "AccessDenied",
  });
export const notFound = (message: string) =>
  new ApiError(ErrorCode.NOT_FOUND, message, { iamCode: "NoSuchEntity" });
export const alreadyExists = (message: string) =>
  new ApiError(ErrorCode.ALREADY_EXISTS, message, { iamCode: "EntityAlreadyExists" });
export const limitExceeded = (message: string) =>
  new ApiError(ErrorCode.LIMIT_EXCEEDED, message, { iamCode: "LimitExceeded" });
export const deleteConflict = (message: string) =>
  new ApiError(ErrorCode.DELETE_CONFLICT, message, { iamCode: "DeleteConflict" });
export const invalidCode = (
  message = "Authentication code for device is not valid.",
  extensions?: Record<string, unknown>,
) =>
  new ApiError(ErrorCode.INVALID_AUTHENTICATION_CODE, message, {
    iamCode: "InvalidAuthenticationCode",
    extensions,
  });
export const rateLimited = (retryAfterSeconds: number) =>
  new ApiError(ErrorCode.RATE_LIMITED, "Too many attempts. Try again later.", {
    // AWS's name for being throttled; LimitExceeded is its quota error (LIMIT_EXCEEDED here).
    iamCode: "Throttling",
    extensions: { retryAfterSeconds },
  });
export const serviceUnavailable = (message = "The authentication service is unavailable.") =>
  new ApiError(ErrorCode.SERVICE_UNAVAILABLE, message, { iamCode: "ServiceFailure" });

/** Apollo's own codes for requests it refused before resolvers ran; all are the client's fault. */
const CLIENT_FAULT_CODES = new Set([
  "GRAPHQL_PARSE_FAILED",
  "GRAPHQL_VALIDATION_FAILED",
  "BAD_USER_INPUT",
  "BAD_REQUEST",
  "PERSISTED_QUERY_NOT_FOUND",
  "PERSISTED_QUERY_NOT_SUPPORTED",
  "OPERATION_RESOLUTION_FAILURE",
]);

/**
 * Apollo's formatError: never throws. Keeps known codes, folds Apollo's client-fault codes
 * into BAD_USER_INPUT, and masks everything else as INTERNAL_SERVER_ERROR. The stack trace is
 * dropped always; details of masked errors go to the log, not the client.
 */
export function formatError(
  formatted: GraphQLFormattedError,
  onMasked: (formatted: GraphQLFormattedError, error: unknown) => void = () => {},
  error?: unknown,
): GraphQLFormattedError {
  const code = String(formatted.extensions?.code ?? "");
  const {
    stacktrace: _stack,
    http: _http,
    exception: _exception,
    ...extensions
  } = formatted.extensions ?? {};
  // Apollo's own BAD_USER_INPUT (a variable of the wrong type) has no AWS name yet: below.
  const apollosOwn = code === ErrorCode.BAD_USER_INPUT && extensions.iamCode === undefined;
  if (ERROR_CODES.has(code) && code !== ErrorCode.INTERNAL_SERVER_ERROR && !apollosOwn) {
    return { ...formatted, extensions };
  }
  // Apollo answers some client faults (a persisted-query hash that does not match its query)
  // with a 4xx status and no code, which it then fills in as INTERNAL_SERVER_ERROR; every
  // error of this service's own carries a code. Only the original error still shows both.
  const original = (error as { extensions?: { code?: unknown; http?: unknown } } | undefined)
    ?.extensions;
  const apolloClientFault = original?.code === undefined && isClientStatus(original?.http);
  if (CLIENT_FAULT_CODES.has(code) || apolloClientFault) {
    return {
      ...formatted,
      message: withoutVariableValue(formatted.message),
      extensions: { ...extensions, code: ErrorCode.BAD_USER_INPUT, iamCode: "ValidationError" },
    };
  }
  const mapped = mapKnownDatabaseError(error);
  if (mapped) {
    const { http: _mappedHttp, ...mappedExtensions } = mapped.extensions;
    return { ...formatted, message: mapped.message, extensions: mappedExtensions };
  }
  onMasked(formatted, error);
  return {
    message: "Internal server error.",
    locations: formatted.locations,
    path: formatted.path,
    extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR, iamCode: "ServiceFailure" },
  };
}

/**
 * graphql-js refuses a variable of the wrong shape with its whole value printed in the message
 * (`Variable "$input" got invalid value { password: "…", junk: 1 }; Field "junk" is not
 * defined…`), and clients and proxies log error messages. This service's own errors name the
 * field, never the value; these now do too. Only reasons of a known, value-free shape are kept:
 * the value cannot be told apart from the reason reliably, and some reasons quote it.
 */
export function withoutVariableValue(message: string): string {
  const variable = /^Variable "(\$\w+)" got invalid value /.exec(message)?.[1];
  if (!variable) return message;
  const reason =
    /Field "\w+" is not defined by type "\w+"\./.exec(message)?.[0] ??
    /Field "[\w.]+" of required type "[\w![\]]+" was not provided\./.exec(message)?.[0] ??
    /Expected type "\w+" to be an object\./.exec(message)?.[0];
  return `Variable "${variable}" got an invalid value${reason ? `: ${reason}` : "."}`;
}

function isClientStatus(http: unknown): boolean {
  const status = (http as { status?: unknown } | undefined)?.status;
  return typeof status === "number" && status >= 400 && status < 500;
}

/**
 * The HTTP status of a known database failure's code, or undefined for any other error. Such
 * failures become API errors only when the answer is formatted, after Apollo has chosen the
 * status from the errors it saw; `use-database-error-status.ts` applies this one instead.
 */
export function databaseErrorStatus(error: unknown): number | undefined {
  const mapped = mapKnownDatabaseError(error);
  return mapped ? HTTP_STATUS[mapped.code] : undefined;
}

/**
 * Known Prisma failures that reach the normaliser map to domain codes: a unique violation
 * means a concurrent request created the same entity first; a missing row means it was deleted.
 */
function mapKnownDatabaseError(error: unknown): ApiError | undefined {
  const original = error === undefined ? undefined : unwrapResolverError(error);
  const prismaCode = (original as { code?: unknown } | undefined)?.code;
  if (prismaCode === "P2002") return alreadyExists("The entity already exists.");
  if (prismaCode === "P2025") return notFound("The entity does not exist.");
  // A failure while building the context (the session lookup) arrives wrapped by Apollo.
  const inner = (original as { originalError?: unknown } | undefined)?.originalError;
  // Text PostgreSQL cannot store (a NUL) is the caller's fault, not a bug. Lone surrogates never
  // get this far: use-well-formed-text.ts refuses them first, because Prisma fails on them
  // before PostgreSQL could say so.
  if (hasSqlState(original, UNSTORABLE_TEXT) || hasSqlState(inner, UNSTORABLE_TEXT)) {
    return badInput("A value contains characters that are not allowed.");
  }
  if (isDatabaseUnavailable(original) || isDatabaseUnavailable(inner)) {
    return serviceUnavailable("The service is unavailable.");
  }
  return undefined;
}

/**
 * A row referenced a row that is gone: typically a user deleted while a request about them was
 * under way. Callers that can tell what went missing turn this into their own answer.
 */
export function isForeignKeyViolation(error: unknown): boolean {
  return (
    (error as { code?: unknown } | undefined)?.code === "P2003" || hasSqlState(error, /^23503$/)
  );
}

/**
 * Prisma's codes for an unreachable, closed or exhausted database connection, and for a
 * transaction that timed out or could not be started or serialised (P2028, P2034): the request
 * may succeed when tried again, so the caller hears SERVICE_UNAVAILABLE, not a masked bug.
 */
const UNAVAILABLE_PRISMA_CODES = new Set([
  "P1001",
  "P1002",
  "P1008",
  "P1017",
  "P2024",
  "P2028",
  "P2034",
]);
/** The driver adapter's kinds for the same, and PostgreSQL's shutdown and overload states. */
const UNAVAILABLE_ADAPTER_KINDS = new Set([
  "DatabaseNotReachable",
  "ConnectionClosed",
  "SocketTimeout",
  "TooManyConnections",
]);
const UNAVAILABLE_SQLSTATES = /^(08...|57P0[1-3]|53300)$/;
/**
 * pg's own words for a connection that is gone. Prisma's adapter passes some of them on with
 * no code or kind ("Client has encountered a connection error and is not queryable", inside a
 * transaction whose connection the server ended), so the message is all there is to go by.
 */
export const LOST_CONNECTION =
  /Connection terminated|timeout exceeded when trying to connect|connection error|Connection ended/i;

/** invalid byte sequence / untranslatable character: PostgreSQL refused the text itself. */
const UNSTORABLE_TEXT = /^(22021|22P05)$/;

function adapterCause(error: unknown) {
  const e = error as
    | {
        meta?: { driverAdapterError?: { cause?: { kind?: unknown; originalCode?: unknown } } };
        cause?: { kind?: unknown; originalCode?: unknown };
      }
    | undefined;
  return e?.meta?.driverAdapterError?.cause ?? e?.cause;
}

function hasSqlState(error: unknown, pattern: RegExp): boolean {
  const code = adapterCause(error)?.originalCode;
  return typeof code === "string" && pattern.test(code);
}

/**
 * Whether a failure means PostgreSQL is down or restarting rather than a bug: the caller then
 * gets SERVICE_UNAVAILABLE (retry later), as when the worker is down, not a masked internal error.
 */
function isDatabaseUnavailable(error: unknown): boolean {
  if (!error) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && UNAVAILABLE_PRISMA_CODES.has(code)) return true;
  const kind = adapterCause(error)?.kind;
  if (typeof kind === "string" && UNAVAILABLE_ADAPTER_KINDS.has(kind)) return true;
  if (error instanceof Error && LOST_CONNECTION.test(error.message)) return true;
  return hasSqlState(error, UNAVAILABLE_SQLSTATES);
}
