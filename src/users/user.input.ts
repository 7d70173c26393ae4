import { Field, InputType } from "type-graphql";

@InputType()
export class CreateUserInput {
  @Field()
  userName!: string;

  @Field({ nullable: true, defaultValue: "/" })
  path!: string;

  @Field({ nullable: true, description: "Lets the user sign in; without it they cannot." })
  password?: string;

  @Field({ nullable: true, defaultValue: false })
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
