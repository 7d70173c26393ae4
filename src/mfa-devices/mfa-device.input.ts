import { Field, InputType } from "type-graphql";

@InputType()
export class TagInput {
  @Field(() => String)
  key!: string;

  @Field(() => String)
  value!: string;
}

@InputType()
export class CreateVirtualMfaDeviceInput {
  @Field(() => String, { description: "Letters, digits and +=,.@_- ; unique per path." })
  virtualMfaDeviceName!: string;

  // Non-null with a default: GraphQL applies a default only to an absent field, so an explicit
  // null must be refused by validation, not reach the service as null.
  @Field(() => String, { nullable: false, defaultValue: "/" })
  path!: string;

  @Field(() => [TagInput], { nullable: false, defaultValue: [], description: "At most 50." })
  tags!: TagInput[];
}

@InputType({ description: "Two consecutive codes the device shows, the second after the first." })
export class EnableMfaDeviceInput {
  @Field(() => String)
  userName!: string;

  @Field(() => String)
  serialNumber!: string;

  @Field(() => String)
  authenticationCode1!: string;

  @Field(() => String)
  authenticationCode2!: string;
}

/** The same four fields as enabling; its own GraphQL name so the two can evolve apart. */
@InputType({ description: "The next two consecutive codes the device shows." })
export class ResyncMfaDeviceInput extends EnableMfaDeviceInput {}

@InputType()
export class DeactivateMfaDeviceInput {
  @Field(() => String)
  serialNumber!: string;

  @Field(() => String, { nullable: true, description: "Defaults to the caller." })
  userName?: string | null;
}

@InputType()
export class DeleteVirtualMfaDeviceInput {
  @Field(() => String)
  serialNumber!: string;
}

@InputType({
  description:
    "Replaces a user's device in one step: proves the new one with two consecutive codes, " +
    "enables it and deactivates the old one together.",
})
export class RotateMfaDeviceInput {
  @Field(() => String)
  userName!: string;

  @Field(() => String)
  oldSerialNumber!: string;

  @Field(() => String)
  newSerialNumber!: string;

  @Field(() => String, { description: "Codes from the new device." })
  authenticationCode1!: string;

  @Field(() => String)
  authenticationCode2!: string;
}

@InputType()
export class TagMfaDeviceInput {
  @Field(() => String)
  serialNumber!: string;

  @Field(() => [TagInput], { description: "An existing key, in any case, is overwritten." })
  tags!: TagInput[];
}

@InputType()
export class UntagMfaDeviceInput {
  @Field(() => String)
  serialNumber!: string;

  @Field(() => [String], {
    description: "Compared without regard to case; unknown keys are ignored.",
  })
  tagKeys!: string[];
}
