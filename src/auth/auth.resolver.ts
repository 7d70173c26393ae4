import { Arg, Ctx, Mutation, Resolver } from "type-graphql";
import { AuthSession } from "../accounts/account.type";
import type { GatewayContext } from "../context";
import { toUser, type UserRow } from "../users/user.type";
import { ALLOW_RECOVERY_SESSION, requireAccountAdmin, requirePrincipal } from "./access";
import type { IssuedSession } from "./session.service";
import {
  AnswerMfaChallengeInput,
  AnswerMfaChallengePayload,
  ChangePasswordInput,
  GetSessionTokenInput,
  SessionsSignedOutPayload,
  SignInInput,
  SignInPayload,
  SignInStatus,
  SignOutPayload,
  SignOutUserInput,
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

  @Mutation(() => SessionsSignedOutPayload, {
    description:
      "Changes the caller's password and signs out every other session of theirs, like AWS " +
      "IAM ChangePassword. A user with an MFA device needs an MFA-authenticated session.",
  })
  async changePassword(
    @Arg("input", () => ChangePasswordInput) input: ChangePasswordInput,
    @Ctx() ctx: GatewayContext,
  ): Promise<SessionsSignedOutPayload> {
    const principal = requirePrincipal(ctx);
    const signedOut = await ctx.services.credentials.changePassword(principal, input, meta(ctx));
    return { sessionsSignedOut: signedOut };
  }

  @Mutation(() => SessionsSignedOutPayload, {
    description:
      "Root or an administrator ends every session of a user: for a stolen device or " +
      "password. Root's sessions only by root.",
  })
  async signOutUser(
    @Arg("input", () => SignOutUserInput) input: SignOutUserInput,
    @Ctx() ctx: GatewayContext,
  ): Promise<SessionsSignedOutPayload> {
    const principal = requireAccountAdmin(ctx);
    const target = await ctx.services.users.findVisible(principal, input.userName);
    const signedOut = await ctx.services.credentials.signOutUser(principal, target, meta(ctx));
    return { sessionsSignedOut: signedOut };
  }
}
