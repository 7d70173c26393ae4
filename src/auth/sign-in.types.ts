import { Field, InputType, ObjectType, registerEnumType } from "type-graphql";
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
  @Field()
  challenge!: string;

  @Field()
  expiresAt!: Date;
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
