import { Field, InputType, Int, ObjectType, registerEnumType } from "type-graphql";
import { AuthSession } from "../accounts/account.type";

export enum SignInStatus {
  SIGNED_IN = "SIGNED_IN",
  MFA_REQUIRED = "MFA_REQUIRED",
}
registerEnumType(SignInStatus, {
  name: "SignInStatus",
  description: "SIGNED_IN carries a session; MFA_REQUIRED carries a challenge to answer.",
});

@InputType({ description: "Root signs in with email; IAM users with account and user name." })
export class SignInInput {
  @Field({ nullable: true })
  email?: string;

  @Field({ nullable: true, description: "The 12-digit account id or the account alias." })
  account?: string;

  @Field({ nullable: true })
  userName?: string;

  @Field()
  password!: string;
}

@ObjectType({ description: "A short-lived MFA challenge, answered with answerMfaChallenge." })
export class MfaChallenge {
  @Field({ description: "Pass to answerMfaChallenge. Single use; shown only here." })
  challenge!: string;

  @Field()
  expiresAt!: Date;

  @Field(() => [String], {
    description: "The user's MFA devices; the code may come from any one of them.",
  })
  serialNumbers!: string[];
}

@InputType()
export class AnswerMfaChallengeInput {
  @Field(() => String, { description: "The challenge signIn returned." })
  challenge!: string;

  @Field(() => String, {
    description:
      "The code the device shows now, or one unused recovery code (spaces and hyphens " +
      "are ignored).",
  })
  code!: string;

  @Field(() => String, {
    nullable: true,
    description: "The device the code is from; needed only when the user has several.",
  })
  serialNumber?: string | null;
}

@ObjectType()
export class AnswerMfaChallengePayload {
  @Field(() => AuthSession, { description: "An MFA-authenticated session (kind MFA)." })
  session!: AuthSession;

  @Field({ description: "True when a recovery code answered the challenge." })
  usedRecoveryCode!: boolean;

  @Field(() => Int, { description: "The user's unused recovery codes after this sign-in." })
  recoveryCodesRemaining!: number;
}

@InputType({ description: "Like AWS STS GetSessionToken with SerialNumber and TokenCode." })
export class GetSessionTokenInput {
  @Field(() => String, { description: "A device assigned to the caller." })
  serialNumber!: string;

  @Field(() => String, { description: "The code the device shows now." })
  tokenCode!: string;

  @Field(() => Int, {
    nullable: true,
    description:
      "900 to 129600 seconds; default 43200. The root user's sessions last at most 3600, and " +
      "no session outlives the calling one.",
  })
  durationSeconds?: number | null;
}

@ObjectType()
export class SignInPayload {
  @Field(() => SignInStatus)
  status!: SignInStatus;

  @Field(() => AuthSession, { nullable: true })
  session!: AuthSession | null;

  @Field(() => MfaChallenge, { nullable: true })
  challenge!: MfaChallenge | null;
}

@ObjectType()
export class SignOutPayload {
  @Field()
  signedOut!: boolean;
}

@InputType({ description: "The caller's current password and the one to replace it." })
export class ChangePasswordInput {
  @Field()
  currentPassword!: string;

  @Field({ description: "8 to 256 characters, not the current one." })
  newPassword!: string;
}

@InputType()
export class SignOutUserInput {
  @Field()
  userName!: string;
}

@ObjectType()
export class SessionsSignedOutPayload {
  @Field(() => Int, { description: "How many live sessions were ended." })
  sessionsSignedOut!: number;
}
