import { Field, InputType, ObjectType } from "type-graphql";
import { AuthSession } from "../accounts/account.type";

@ObjectType({ description: "Single-use recovery codes. They are shown here and never again." })
export class GenerateRecoveryCodesPayload {
  @Field(() => [String], {
    description: "Ten codes like 7QF2-M9XK-4D0C-HRWA; each answers one MFA challenge.",
  })
  recoveryCodes!: string[];

  @Field()
  generatedAt!: Date;
}

@InputType({ description: "The root user's email and password; the MFA device is not needed." })
export class StartRootRecoveryInput {
  @Field(() => String)
  email!: string;

  @Field(() => String)
  password!: string;
}

@ObjectType()
export class StartRootRecoveryPayload {
  @Field(() => String, { description: "Pass to completeRootRecovery with both codes." })
  recoveryToken!: string;

  @Field()
  expiresAt!: Date;

  @Field(() => String, { description: "The account email the first code went to, masked." })
  emailSentTo!: string;

  @Field(() => String, { description: "The account phone the second code went to, masked." })
  smsSentTo!: string;
}

@InputType()
export class CompleteRootRecoveryInput {
  @Field(() => String)
  recoveryToken!: string;

  @Field(() => String, { description: "The code from the email." })
  emailCode!: string;

  @Field(() => String, { description: "The code from the text message." })
  phoneCode!: string;
}

@ObjectType()
export class CompleteRootRecoveryPayload {
  @Field(() => AuthSession, {
    description:
      "A short RECOVERY session: it may only deactivate and delete the root user's MFA device " +
      "and create (named root-account-mfa-device) and enable a new one; everything else is " +
      "FORBIDDEN.",
  })
  session!: AuthSession;

  @Field(() => [String], { description: "The root user's MFA devices, to deactivate." })
  serialNumbers!: string[];
}
