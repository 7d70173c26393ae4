import type { Logger } from "pino";
import type { Services } from "./services";

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
}

export interface GatewayContext {
  services: Services;
  principal: Principal | null;
  requestId: string;
  /** The caller's address; the auth worker gives each source its own attempt budget. */
  sourceIp: string;
  logger: Logger;
}
