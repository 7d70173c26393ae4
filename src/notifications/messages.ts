/**
 * The text of every notification. Bodies never hold a password, seed, TOTP code, recovery code
 * or session token; the root recovery codes are the one secret, and only in their own message.
 */
import type { NoticeRecipient } from "./outbox";

export interface MessageText {
  subject: string;
  body: string;
}

const who = (to: NoticeRecipient) =>
  to.isRoot
    ? `the root user of account ${to.accountId}`
    : `user ${to.userName} of account ${to.accountId}`;

const SIGN_OFF = "\n\nThis message was sent automatically; do not reply to it.";

export function mfaFailuresNotice(
  to: NoticeRecipient,
  streak: number,
  sourceIp: string,
): MessageText {
  return {
    subject: "Wrong MFA codes after a correct password",
    body:
      `Someone signed in to ${who(to)} with the correct password, then gave ${streak} wrong ` +
      `MFA codes in a row (latest from ${sourceIp}).\n\n` +
      "If this was not you, your password is known to someone else: change it now. Your " +
      "account is not locked, and your MFA device still protects it." +
      SIGN_OFF,
  };
}

export function recoveryCodeUsedNotice(
  to: NoticeRecipient,
  remaining: number,
  sourceIp: string,
): MessageText {
  return {
    subject: "A recovery code was used to sign in",
    body:
      `A recovery code was used instead of an MFA code to sign in to ${who(to)} from ` +
      `${sourceIp}. ${remaining} unused recovery code${remaining === 1 ? "" : "s"} remain.\n\n` +
      "If this was not you, sign in, replace your MFA device and generate new recovery codes." +
      SIGN_OFF,
  };
}

export function recoveryCodesGeneratedNotice(to: NoticeRecipient, sourceIp: string): MessageText {
  return {
    subject: "New recovery codes were generated",
    body:
      `New recovery codes were generated for ${who(to)} from ${sourceIp}. Any earlier ` +
      "recovery codes no longer work." +
      SIGN_OFF,
  };
}

export function passwordChangedNotice(
  to: NoticeRecipient,
  sessionsSignedOut: number,
  sourceIp: string,
): MessageText {
  return {
    subject: "Your password was changed",
    body:
      `The password of ${who(to)} was changed from ${sourceIp}, and ${sessionsSignedOut} ` +
      "other session(s) were signed out.\n\nIf this was not you, ask an administrator of " +
      "the account to sign the user out and set up the user's MFA again." +
      SIGN_OFF,
  };
}

export function signedOutByAdministratorNotice(
  to: NoticeRecipient,
  sessionsSignedOut: number,
): MessageText {
  return {
    subject: "You were signed out",
    body:
      `The root user or an administrator of the account signed ${who(to)} out of ` +
      `${sessionsSignedOut} session(s). Sign in again to go on.` +
      SIGN_OFF,
  };
}

export function rootRecoveryEmailCode(
  accountId: string,
  code: string,
  ttlMinutes: number,
): MessageText {
  return {
    subject: "Your root user recovery code",
    body:
      `Someone who knows the root password of account ${accountId} asked to sign in without ` +
      `the MFA device. The email verification code is:\n\n    ${code}\n\n` +
      `It is valid for ${ttlMinutes} minutes, together with the code sent to the account's ` +
      "phone. If this was not you, do not share the code, and change the root password." +
      SIGN_OFF,
  };
}

export function rootRecoverySmsCode(accountId: string, code: string): MessageText {
  return {
    subject: "Root user recovery code",
    body: `Account ${accountId} root recovery code: ${code}. Do not share it.`,
  };
}

export function rootRecoveryCompletedNotice(accountId: string, sourceIp: string): MessageText {
  return {
    subject: "Your root user signed in with account recovery",
    body:
      `The root user of account ${accountId} proved the account's email and phone and signed ` +
      `in without its MFA device, from ${sourceIp}. That session may only deactivate the ` +
      "root user's MFA device and set up a new one; every other session of the root user " +
      "was signed out.\n\nIf this was not you, change the root password now." +
      SIGN_OFF,
  };
}
