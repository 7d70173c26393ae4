import { Arg, Ctx, Mutation, Resolver } from "type-graphql";
import type { GatewayContext } from "../context";
import { toUser } from "../users/user.type";
import { requirePrincipal } from "./access";
import { SignInInput, SignInPayload, SignInStatus, SignOutPayload } from "./sign-in.types";

@Resolver()
export class AuthResolver {
  @Mutation(() => SignInPayload, {
    description: "Password sign-in. Users with an MFA device get a challenge, not a session.",
  })
  async signIn(
    @Arg("input", () => SignInInput) input: SignInInput,
    @Ctx() ctx: GatewayContext,
  ): Promise<SignInPayload> {
    const outcome = await ctx.services.signIn.signIn(input, {
      requestId: ctx.requestId,
      sourceIp: ctx.sourceIp,
    });
    return {
      status: SignInStatus.SIGNED_IN,
      session: { ...outcome.session, user: toUser(outcome.user) },
      challenge: null,
    };
  }

  @Mutation(() => SignOutPayload, { description: "Ends the calling session." })
  async signOut(@Ctx() ctx: GatewayContext): Promise<SignOutPayload> {
    const principal = requirePrincipal(ctx);
    await ctx.services.sessions.revoke(principal.sessionId);
    return { signedOut: true };
  }
}
