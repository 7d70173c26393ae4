import { Field, InputType, Int } from "type-graphql";

@InputType()
export class CreateAccountInput {
  @Field({ description: "The root user's email; it signs the root user in." })
  email!: string;

  @Field({ description: "E.164, e.g. +14155550100; used for root recovery." })
  phone!: string;

  @Field()
  password!: string;

  @Field(() => String, {
    nullable: true,
    description:
      "Shown in authenticator apps instead of the id, and signs IAM users in: 3–63 lower-case " +
      "letters, digits and single hyphens, and not twelve digits (that is an account id).",
  })
  accountAlias?: string | null;
}

@InputType()
export class UpdateAccountSettingsInput {
  @Field(() => Int, { description: "How many MFA devices one user may have assigned (1–8)." })
  maxDevicesPerUser!: number;
}
