import { Arg, Ctx, FieldResolver, Int, Mutation, Resolver, Root } from "type-graphql";
import type { GatewayContext } from "../context";
import { requirePrincipal } from "../auth/access";
import { toAuthSession } from "../auth/auth.resolver";
import { User } from "../users/user.type";
import {
  CompleteRootRecoveryInput,
  CompleteRootRecoveryPayload,
  GenerateRecoveryCodesPayload,
  StartRootRecoveryInput,
  StartRootRecoveryPayload,
} from "./recovery.types";

const meta = (ctx: GatewayContext) => ({ requestId: ctx.requestId, sourceIp: ctx.sourceIp });

@Resolver(() => User)
export class RecoveryResolver {
  @FieldResolver(() => Int, {
    nullable: true,
    description: "Unused recovery codes; shown to the user themself only (null for others).",
  })
  async recoveryCodesRemaining(
    @Root() user: User,
    @Ctx() ctx: GatewayContext,
  ): Promise<number | null> {
    if (ctx.principal?.userId !== user.userId) return null;
    return ctx.services.recoveryCodes.remaining(user.userId);
  }

  @Mutation(() => GenerateRecoveryCodesPayload, {
    description:
      "Ten new single-use recovery codes for the caller, replacing any earlier set. Needs an " +
      "MFA-authenticated session and an enabled MFA device.",
  })
  async generateRecoveryCodes(@Ctx() ctx: GatewayContext): Promise<GenerateRecoveryCodesPayload> {
    const principal = requirePrincipal(ctx);
    const { codes, generatedAt } = await ctx.services.recoveryCodes.generate(principal, meta(ctx));
    return { recoveryCodes: codes, generatedAt };
  }

  @Mutation(() => StartRootRecoveryPayload, {
    description:
      "Root lost its MFA device: with the root email and password, sends one code to the " +
      "account's email and another to its phone.",
  })
  async startRootRecovery(
    @Arg("input", () => StartRootRecoveryInput) input: StartRootRecoveryInput,
    @Ctx() ctx: GatewayContext,
  ): Promise<StartRootRecoveryPayload> {
    return ctx.services.rootRecovery.start(input, meta(ctx));
  }

  @Mutation(() => CompleteRootRecoveryPayload, {
    description: "Both codes from startRootRecovery give a session that can replace root's device.",
  })
  async completeRootRecovery(
    @Arg("input", () => CompleteRootRecoveryInput) input: CompleteRootRecoveryInput,
    @Ctx() ctx: GatewayContext,
  ): Promise<CompleteRootRecoveryPayload> {
    const { session, user, serialNumbers } = await ctx.services.rootRecovery.complete(
      input,
      meta(ctx),
    );
    return { session: toAuthSession(session, user), serialNumbers };
  }
}
