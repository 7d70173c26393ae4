import type { Logger } from "pino";
import { CredentialService } from "./auth/credentials.service";
import type { GatewayConfig } from "./config";
import type { Db, HotSql } from "./db";
import type { WorkerClient } from "../worker/client";
import type { AnyRedis } from "../worker/redis-connection";
import type { GatewayMetrics } from "./observability/metrics";
import { AuditService } from "./audit/audit.service";
import { AccountService } from "./accounts/account.service";
import { SessionService } from "./auth/session.service";
import { SignInService } from "./auth/sign-in.service";
import { MfaChallengeService } from "./auth/mfa-challenge.service";
import { MfaFailureService } from "./auth/mfa-failures";
import { PasswordAttemptGuard } from "./auth/password-attempts";
import { RedisBudgets } from "./common/redis-budgets";
import { StepUpService } from "./auth/step-up.service";
import { RecoveryCodeService } from "./recovery/recovery-code.service";
import { RootRecoveryService } from "./recovery/root-recovery.service";
import { RecoverySendGuard } from "./recovery/recovery-sends";
import { UserService } from "./users/user.service";
import { CodeVerificationService } from "./mfa-devices/code-verification.service";
import { MfaAssignmentService } from "./mfa-devices/mfa-assignment.service";
import { MfaDeviceService } from "./mfa-devices/mfa-device.service";
import { MfaDeviceTagService } from "./mfa-devices/mfa-device-tags.service";

/** Everything resolvers may use, built once per gateway process. */
export interface Services {
  config: GatewayConfig;
  db: Db;
  worker: WorkerClient;
  logger: Logger;
  audit: AuditService;
  accounts: AccountService;
  sessions: SessionService;
  /** changePassword and signOutUser. */
  credentials: CredentialService;
  signIn: SignInService;
  /** answerMfaChallenge: the second half of sign-in. */
  mfaChallenges: MfaChallengeService;
  /** getSessionToken: step-up with one code. */
  stepUp: StepUpService;
  recoveryCodes: RecoveryCodeService;
  rootRecovery: RootRecoveryService;
  users: UserService;
  /** Checks TOTP codes through the worker; shared by enrolment and sign-in. */
  codeVerification: CodeVerificationService;
  mfaDevices: MfaDeviceService;
  mfaAssignments: MfaAssignmentService;
  mfaDeviceTags: MfaDeviceTagService;
}

export function createServices(deps: {
  config: GatewayConfig;
  db: Db;
  /** The same pool as `db`, for the few hot statements (src/db.ts). */
  sql: HotSql;
  worker: WorkerClient;
  /** The connection the worker client uses; password attempt budgets live there too. */
  redis: AnyRedis;
  logger: Logger;
  /** Where budget refusals are counted; none in tools that run no HTTP server. */
  metrics?: Pick<GatewayMetrics, "budgetRefusals">;
}): Services {
  const { config, db } = deps;
  const budgets = new RedisBudgets(deps.redis, config.REDIS_PREFIX, deps.logger, {
    deadlineMs: config.WORKER_DEADLINE_MS,
    onRefused: (budget) => deps.metrics?.budgetRefusals.inc({ budget }),
  });
  const passwordAttempts = new PasswordAttemptGuard(budgets, {
    perUserAndSource: config.PASSWORD_FAILURES_PER_USER_AND_SOURCE,
    perSource: config.PASSWORD_FAILURES_PER_SOURCE,
    windowSeconds: config.PASSWORD_FAILURE_WINDOW_SECONDS,
  });
  const audit = new AuditService(db);
  const sessions = new SessionService(db, deps.sql);
  const users = new UserService(db, audit);
  const codeVerification = new CodeVerificationService(db, deps.worker, deps.logger);
  const mfaDevices = new MfaDeviceService(
    db,
    deps.worker,
    audit,
    users,
    config,
    deps.logger,
    budgets,
  );
  const mfaFailures = new MfaFailureService(db, config.MFA_FAILURE_NOTIFY_EVERY);
  const recoveryCodes = new RecoveryCodeService(
    db,
    audit,
    config.RECOVERY_CODE_PEPPER,
    budgets,
    config.RECOVERY_CODE_SETS_PER_HOUR,
  );
  const mfaChallenges = new MfaChallengeService(
    db,
    sessions,
    audit,
    codeVerification,
    recoveryCodes,
    mfaFailures,
    config,
  );
  const signIn = new SignInService(
    db,
    sessions,
    mfaChallenges,
    audit,
    passwordAttempts,
    config.SESSION_TTL_SECONDS,
  );
  return {
    ...deps,
    audit,
    accounts: new AccountService(db, audit, budgets, {
      perSource: config.ACCOUNT_SIGNUPS_PER_SOURCE,
      windowSeconds: config.ACCOUNT_SIGNUP_WINDOW_SECONDS,
    }),
    sessions,
    credentials: new CredentialService(db, sessions, audit, passwordAttempts),
    signIn,
    mfaChallenges,
    stepUp: new StepUpService(deps.sql, audit, codeVerification, mfaFailures),
    recoveryCodes,
    rootRecovery: new RootRecoveryService(
      db,
      signIn,
      sessions,
      audit,
      new RecoverySendGuard(budgets, {
        perRecipient: config.ROOT_RECOVERY_SENDS_PER_RECIPIENT,
        perSource: config.ROOT_RECOVERY_SENDS_PER_SOURCE,
        serviceWide: config.ROOT_RECOVERY_SENDS_SERVICE_WIDE,
        windowSeconds: config.ROOT_RECOVERY_SEND_WINDOW_SECONDS,
        newAccountDays: config.ROOT_RECOVERY_NEW_ACCOUNT_DAYS,
      }),
      config,
    ),
    users,
    codeVerification,
    mfaDevices,
    mfaAssignments: new MfaAssignmentService(db, audit, users, mfaDevices, codeVerification),
    mfaDeviceTags: new MfaDeviceTagService(db, audit, mfaDevices),
  };
}
