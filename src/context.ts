import type { Logger } from "pino";
import type { Services } from "./services";
import type { EntityLoaders } from "./federation/entity-loaders";

/** Who is calling, derived from the bearer session. */
export interface Principal {
  sessionId: string;
  userId: string;
  accountId: string;
  isRoot: boolean;
  isAdmin: boolean;
  mfaAuthenticated: boolean;
  /** password | mfa | sts | recovery */
  kind: string;
  /** When the session ends; a session derived from it (getSessionToken) never outlives it. */
  expiresAt: Date;
}

export interface GatewayContext {
  services: Services;
  principal: Principal | null;
  requestId: string;
  /** The caller's address; the auth worker gives each source its own attempt budget. */
  sourceIp: string;
  logger: Logger;
  /** Per-request batching of entity references (`_entities`), keyed by account. */
  loaders: EntityLoaders;
}
