import { Arg, Ctx, Mutation, Resolver } from "type-graphql";
import { AuthSession } from "../accounts/account.type";
import type { GatewayContext } from "../context";
import { toUser, type UserRow } from "../users/user.type";
import { ALLOW_RECOVERY_SESSION, requirePrincipal } from "./access";
import type { IssuedSession } from "./session.service";
import {
  AnswerMfaChallengeInput,
  AnswerMfaChallengePayload,
  GetSessionTokenInput,
  SignInInput,
  SignInPayload,
  SignInStatus,
  SignOutPayload,
} from "./sign-in.types";

const meta = (ctx: GatewayContext) => ({ requestId: ctx.requestId, sourceIp: ctx.sourceIp });

export const toAuthSession = (session: IssuedSession, user: UserRow): AuthSession =>
  Object.assign(new AuthSession(), { ...session, user: toUser(user) });

@Resolver()
export class AuthResolver {
  @Mutation(() => SignInPayload, {
    description: "Password sign-in. Users with an MFA device get a challenge, not a session.",
  })
  async signIn(
    @Arg("input", () => SignInInput) input: SignInInput,
    @Ctx() ctx: GatewayContext,
  ): Promise<SignInPayload> {
    const outcome = await ctx.services.signIn.signIn(input, meta(ctx));
    if (outcome.status === "MFA_REQUIRED") {
      return { status: SignInStatus.MFA_REQUIRED, session: null, challenge: outcome.challenge };
    }
    return {
      status: SignInStatus.SIGNED_IN,
      session: toAuthSession(outcome.session, outcome.user),
      challenge: null,
    };
  }

  @Mutation(() => AnswerMfaChallengePayload, {
    description:
      "Answers signIn's challenge with one code from the device, or one recovery code, for an " +
      "MFA-authenticated session. A challenge is single use and void after too many wrong codes.",
  })
  async answerMfaChallenge(
    @Arg("input", () => AnswerMfaChallengeInput) input: AnswerMfaChallengeInput,
    @Ctx() ctx: GatewayContext,
  ): Promise<AnswerMfaChallengePayload> {
    const answered = await ctx.services.mfaChallenges.answer(input, meta(ctx));
    return {
      session: toAuthSession(answered.session, answered.user),
      usedRecoveryCode: answered.usedRecoveryCode,
      recoveryCodesRemaining: answered.recoveryCodesRemaining,
    };
  }

  @Mutation(() => AuthSession, {
    description:
      "Step-up, like AWS STS GetSessionToken: one code from the caller's own device gives a " +
      "new, shorter, MFA-authenticated session (kind STS).",
  })
  async getSessionToken(
    @Arg("input", () => GetSessionTokenInput) input: GetSessionTokenInput,
    @Ctx() ctx: GatewayContext,
  ): Promise<AuthSession> {
    const principal = requirePrincipal(ctx);
    const { session, user } = await ctx.services.stepUp.getSessionToken(
      principal,
      input,
      meta(ctx),
    );
    return toAuthSession(session, user);
  }

  @Mutation(() => SignOutPayload, { description: "Ends the calling session." })
  async signOut(@Ctx() ctx: GatewayContext): Promise<SignOutPayload> {
    // Ending a session is always allowed, a recovery session's included.
    const principal = requirePrincipal(ctx, ALLOW_RECOVERY_SESSION);
    await ctx.services.sessions.revoke(principal.sessionId);
    return { signedOut: true };
  }
}
