import { Directive, Field, ID, ObjectType, registerEnumType } from "type-graphql";
import { Connection } from "../common/connection.type";
import type { Tag as TagValue } from "../common/iam-names";
import { toUser, User, type UserRow } from "../users/user.type";

export enum AssignmentStatus {
  ASSIGNED = "ASSIGNED",
  UNASSIGNED = "UNASSIGNED",
  ANY = "ANY",
}
registerEnumType(AssignmentStatus, {
  name: "AssignmentStatus",
  description: "Which virtual MFA devices to list: assigned to a user, unassigned, or both.",
});

@ObjectType({
  description: "A key and value attached to a resource. Keys are unique without regard to case.",
})
export class Tag {
  @Field(() => String)
  key!: string;

  @Field(() => String)
  value!: string;
}

@Directive(`@key(fields: "serialNumber")`)
@ObjectType({
  description:
    "A virtual (TOTP) MFA device. Its secret is shown once, when it is created, and never again.",
})
export class VirtualMfaDevice {
  @Field(() => ID, { description: "The device ARN: arn:aws:iam::<account>:mfa<path><name>." })
  serialNumber!: string;

  @Field(() => String, { nullable: true })
  virtualMfaDeviceName!: string | null;

  @Field(() => String)
  path!: string;

  @Field(() => User, { nullable: true, description: "The user the device is assigned to, if any." })
  user!: User | null;

  @Field(() => Date, { nullable: true, description: "When the device was enabled for its user." })
  enableDate!: Date | null;

  @Field(() => [Tag], { description: "Sorted by key." })
  tags!: Tag[];

  @Field(() => Date)
  createDate!: Date;
}

@ObjectType()
export class VirtualMfaDeviceConnection extends Connection(VirtualMfaDevice, "VirtualMfaDevice") {}

@ObjectType({ description: "An MFA device assigned to a user, as ListMFADevices reports it." })
export class MfaDevice {
  @Field(() => ID)
  serialNumber!: string;

  @Field(() => String)
  userName!: string;

  @Field(() => Date)
  enableDate!: Date;

  @Field(() => VirtualMfaDevice)
  virtualMfaDevice!: VirtualMfaDevice;
}

@ObjectType()
export class MfaDeviceConnection extends Connection(MfaDevice, "MfaDevice") {}

@ObjectType({ description: "A new device and, this once, its secret in every form an app takes." })
export class CreateVirtualMfaDevicePayload {
  @Field(() => VirtualMfaDevice)
  virtualMfaDevice!: VirtualMfaDevice;

  @Field(() => String, {
    description: "The seed, RFC 3548 base32 without padding (64 characters).",
  })
  base32StringSeed!: string;

  @Field(() => String, { description: "The otpauth:// Key Uri an authenticator app imports." })
  otpauthUri!: string;

  @Field(() => String, { description: "A PNG QR code of otpauthUri, base64-encoded." })
  qrCodePng!: string;
}

@ObjectType()
export class RotateMfaDevicePayload {
  @Field(() => VirtualMfaDevice, { description: "The new device, now assigned." })
  enabled!: VirtualMfaDevice;

  @Field(() => VirtualMfaDevice, { description: "The old device, now unassigned." })
  deactivated!: VirtualMfaDevice;
}

/** A device row with its user, as services return it. Carries the sealed seed: never expose it. */
export interface DeviceRow {
  id: string;
  accountId: string;
  name: string;
  path: string;
  serialNumber: string;
  sealedSeed: string;
  keyId: string;
  algorithm: string;
  digits: number;
  period: number;
  userId: string | null;
  enableDate: Date | null;
  drift: number;
  lastStep: number | null;
  burntSteps: number[];
  tags: unknown;
  createdAt: Date;
  user: UserRow | null;
}

/** Copies only public fields, so the sealed seed can never leak through a resolver. */
export function toVirtualMfaDevice(row: DeviceRow): VirtualMfaDevice {
  const assigned = row.userId !== null && row.user !== null;
  return Object.assign(new VirtualMfaDevice(), {
    serialNumber: row.serialNumber,
    virtualMfaDeviceName: row.name,
    path: row.path,
    user: assigned ? toUser(row.user!) : null,
    enableDate: assigned ? row.enableDate : null,
    tags: storedTags(row.tags).map((t) => Object.assign(new Tag(), t)),
    createDate: row.createdAt,
  });
}

/** For rows of ListMFADevices, which are assigned by definition. */
export function toMfaDevice(row: DeviceRow): MfaDevice {
  if (!row.user || !row.enableDate) throw new Error("toMfaDevice: the device is not assigned");
  return Object.assign(new MfaDevice(), {
    serialNumber: row.serialNumber,
    userName: row.user.userName,
    enableDate: row.enableDate,
    virtualMfaDevice: toVirtualMfaDevice(row),
  });
}

/** Tags as stored in the JSON column; anything malformed is dropped, never shown half-read. */
export function storedTags(value: unknown): TagValue[] {
  if (!Array.isArray(value)) return [];
  return value
    .filter(
      (t): t is TagValue =>
        typeof t === "object" &&
        t !== null &&
        typeof t.key === "string" &&
        typeof t.value === "string",
    )
    .map(({ key, value: v }) => ({ key, value: v }));
}
