import { Arg, Ctx, Int, Mutation, Query, Resolver } from "type-graphql";
import type { GatewayContext } from "../context";
import { ALLOW_RECOVERY_SESSION, requirePrincipal } from "../auth/access";
import { DeletePayload } from "../common/payloads";
import type { Page } from "../common/pagination";
import {
  CreateVirtualMfaDeviceInput,
  DeactivateMfaDeviceInput,
  DeleteVirtualMfaDeviceInput,
  EnableMfaDeviceInput,
  ResyncMfaDeviceInput,
  RotateMfaDeviceInput,
  TagMfaDeviceInput,
  UntagMfaDeviceInput,
} from "./mfa-device.input";
import {
  AssignmentStatus,
  CreateVirtualMfaDevicePayload,
  MfaDeviceConnection,
  RotateMfaDevicePayload,
  toMfaDevice,
  toVirtualMfaDevice,
  VirtualMfaDevice,
  VirtualMfaDeviceConnection,
  type DeviceRow,
} from "./mfa-device.type";

const meta = (ctx: GatewayContext) => ({ requestId: ctx.requestId, sourceIp: ctx.sourceIp });

function mapPage<T>(page: Page<DeviceRow>, toNode: (row: DeviceRow) => T) {
  return { ...page, edges: page.edges.map((e) => ({ cursor: e.cursor, node: toNode(e.node) })) };
}

@Resolver(() => VirtualMfaDevice)
export class MfaDeviceResolver {
  @Query(() => VirtualMfaDeviceConnection, {
    description:
      "The account's virtual MFA devices in serial number order (root and administrators).",
  })
  async virtualMfaDevices(
    @Ctx() ctx: GatewayContext,
    @Arg("assignmentStatus", () => AssignmentStatus, { defaultValue: AssignmentStatus.ANY })
    assignmentStatus: AssignmentStatus,
    @Arg("first", () => Int, { nullable: true }) first?: number,
    @Arg("after", () => String, { nullable: true }) after?: string,
  ): Promise<VirtualMfaDeviceConnection> {
    const principal = requirePrincipal(ctx);
    const page = await ctx.services.mfaDevices.list(principal, { assignmentStatus, first, after });
    return mapPage(page, toVirtualMfaDevice);
  }

  @Query(() => MfaDeviceConnection, {
    description: "The MFA devices assigned to a user; the caller when no name is given.",
  })
  async mfaDevices(
    @Ctx() ctx: GatewayContext,
    @Arg("userName", () => String, { nullable: true }) userName?: string,
    @Arg("first", () => Int, { nullable: true }) first?: number,
    @Arg("after", () => String, { nullable: true }) after?: string,
  ): Promise<MfaDeviceConnection> {
    const principal = requirePrincipal(ctx);
    const page = await ctx.services.mfaDevices.listForUser(principal, userName, { first, after });
    return mapPage(page, toMfaDevice);
  }

  @Query(() => VirtualMfaDevice, {
    description: "One device by serial number; a user sees only devices assigned to them.",
  })
  async virtualMfaDevice(
    @Arg("serialNumber", () => String) serialNumber: string,
    @Ctx() ctx: GatewayContext,
  ): Promise<VirtualMfaDevice> {
    const principal = requirePrincipal(ctx);
    return toVirtualMfaDevice(await ctx.services.mfaDevices.findVisible(principal, serialNumber));
  }

  @Mutation(() => CreateVirtualMfaDevicePayload, {
    description: "Creates an unassigned device. Its secret is in this response and never again.",
  })
  async createVirtualMfaDevice(
    @Arg("input", () => CreateVirtualMfaDeviceInput) input: CreateVirtualMfaDeviceInput,
    @Ctx() ctx: GatewayContext,
  ): Promise<CreateVirtualMfaDevicePayload> {
    const principal = requirePrincipal(ctx, ALLOW_RECOVERY_SESSION);
    const created = await ctx.services.mfaDevices.create(principal, input, meta(ctx));
    return Object.assign(new CreateVirtualMfaDevicePayload(), {
      virtualMfaDevice: toVirtualMfaDevice(created.device),
      base32StringSeed: created.base32StringSeed,
      otpauthUri: created.otpauthUri,
      qrCodePng: created.qrCodePng,
    });
  }

  @Mutation(() => VirtualMfaDevice, {
    description: "Assigns a device to a user with two consecutive codes.",
  })
  async enableMfaDevice(
    @Arg("input", () => EnableMfaDeviceInput) input: EnableMfaDeviceInput,
    @Ctx() ctx: GatewayContext,
  ): Promise<VirtualMfaDevice> {
    const principal = requirePrincipal(ctx, ALLOW_RECOVERY_SESSION);
    return toVirtualMfaDevice(
      await ctx.services.mfaAssignments.enable(principal, input, meta(ctx)),
    );
  }

  @Mutation(() => VirtualMfaDevice, {
    description: "Re-centres a drifted device with its next two codes.",
  })
  async resyncMfaDevice(
    @Arg("input", () => ResyncMfaDeviceInput) input: ResyncMfaDeviceInput,
    @Ctx() ctx: GatewayContext,
  ): Promise<VirtualMfaDevice> {
    const principal = requirePrincipal(ctx);
    return toVirtualMfaDevice(
      await ctx.services.mfaAssignments.resync(principal, input, meta(ctx)),
    );
  }

  @Mutation(() => VirtualMfaDevice, {
    description: "Unassigns a device; it keeps its secret and can be enabled again.",
  })
  async deactivateMfaDevice(
    @Arg("input", () => DeactivateMfaDeviceInput) input: DeactivateMfaDeviceInput,
    @Ctx() ctx: GatewayContext,
  ): Promise<VirtualMfaDevice> {
    const principal = requirePrincipal(ctx, ALLOW_RECOVERY_SESSION);
    return toVirtualMfaDevice(
      await ctx.services.mfaAssignments.deactivate(principal, input, meta(ctx)),
    );
  }

  @Mutation(() => DeletePayload, { description: "Refused while the device is assigned." })
  async deleteVirtualMfaDevice(
    @Arg("input", () => DeleteVirtualMfaDeviceInput) input: DeleteVirtualMfaDeviceInput,
    @Ctx() ctx: GatewayContext,
  ): Promise<DeletePayload> {
    // A recovery session may delete root's old device once deactivated, to reuse its name.
    const principal = requirePrincipal(ctx, ALLOW_RECOVERY_SESSION);
    await ctx.services.mfaDevices.delete(principal, input.serialNumber, meta(ctx));
    return Object.assign(new DeletePayload(), { deleted: true });
  }

  @Mutation(() => RotateMfaDevicePayload, {
    description: "Swaps a user's device for a new one, proven with two codes, in one step.",
  })
  async rotateMfaDevice(
    @Arg("input", () => RotateMfaDeviceInput) input: RotateMfaDeviceInput,
    @Ctx() ctx: GatewayContext,
  ): Promise<RotateMfaDevicePayload> {
    const principal = requirePrincipal(ctx);
    const { enabled, deactivated } = await ctx.services.mfaAssignments.rotate(
      principal,
      input,
      meta(ctx),
    );
    return Object.assign(new RotateMfaDevicePayload(), {
      enabled: toVirtualMfaDevice(enabled),
      deactivated: toVirtualMfaDevice(deactivated),
    });
  }

  @Mutation(() => VirtualMfaDevice, { description: "Adds tags, overwriting keys that exist." })
  async tagMfaDevice(
    @Arg("input", () => TagMfaDeviceInput) input: TagMfaDeviceInput,
    @Ctx() ctx: GatewayContext,
  ): Promise<VirtualMfaDevice> {
    const principal = requirePrincipal(ctx);
    const device = await ctx.services.mfaDeviceTags.tag(
      principal,
      input.serialNumber,
      input.tags,
      meta(ctx),
    );
    return toVirtualMfaDevice(device);
  }

  @Mutation(() => VirtualMfaDevice, { description: "Removes tags by key." })
  async untagMfaDevice(
    @Arg("input", () => UntagMfaDeviceInput) input: UntagMfaDeviceInput,
    @Ctx() ctx: GatewayContext,
  ): Promise<VirtualMfaDevice> {
    const principal = requirePrincipal(ctx);
    const device = await ctx.services.mfaDeviceTags.untag(
      principal,
      input.serialNumber,
      input.tagKeys,
      meta(ctx),
    );
    return toVirtualMfaDevice(device);
  }
}
