import { Field, InputType } from "type-graphql";

@InputType()
export class CreateUserInput {
  @Field()
  userName!: string;

  // Non-null with a default, as CreateVirtualMfaDeviceInput's path and tags.
  @Field({ nullable: false, defaultValue: "/" })
  path!: string;

  @Field(() => String, {
    nullable: true,
    description: "Lets the user sign in; without it (or with null) they cannot.",
  })
  password?: string | null;

  @Field({ nullable: false, defaultValue: false })
  isAdministrator!: boolean;

  @Field(() => String, {
    nullable: true,
    description: "Where the user's security notices go; without it, the account's email.",
  })
  email?: string | null;
}

@InputType()
export class DeleteUserInput {
  @Field()
  userName!: string;
}
