import { registerEnumType } from "type-graphql";

/** How a session was obtained; stored in Session.kind in lower case. */
export enum SessionKind {
  /** signIn with a password, for a user without an MFA device (or createAccount). */
  PASSWORD = "password",
  /** signIn, then answerMfaChallenge with a TOTP code or a recovery code. */
  MFA = "mfa",
  /** getSessionToken: a shorter session stepped up with one code, like AWS STS. */
  STS = "sts",
  /** completeRootRecovery: may only replace the root user's device. */
  RECOVERY = "recovery",
}
registerEnumType(SessionKind, {
  name: "SessionKind",
  description:
    "PASSWORD: a password alone. MFA: a password and a code. STS: stepped up with " +
    "getSessionToken. RECOVERY: root recovered with email and phone codes; it may only " +
    "deactivate and delete root's device and create and enable a new one.",
});
