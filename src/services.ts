import type { Logger } from "pino";
import type { GatewayConfig } from "./config";
import type { Db } from "./db";
import type { WorkerClient } from "../worker/client";
import { AuditService } from "./audit/audit.service";
import { AccountService } from "./accounts/account.service";
import { SessionService } from "./auth/session.service";
import { SignInService } from "./auth/sign-in.service";
import { UserService } from "./users/user.service";

/** Everything resolvers may use, built once per gateway process. */
export interface Services {
  config: GatewayConfig;
  db: Db;
  worker: WorkerClient;
  logger: Logger;
  audit: AuditService;
  accounts: AccountService;
  sessions: SessionService;
  signIn: SignInService;
  users: UserService;
}

export function createServices(deps: {
  config: GatewayConfig;
  db: Db;
  worker: WorkerClient;
  logger: Logger;
}): Services {
  const { config, db } = deps;
  const audit = new AuditService(db);
  const sessions = new SessionService(db);
  const users = new UserService(db, audit);
  return {
    ...deps,
    audit,
    accounts: new AccountService(db, audit),
    sessions,
    signIn: new SignInService(db, sessions, audit, config.SESSION_TTL_SECONDS),
    users,
  };
}
