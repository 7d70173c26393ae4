import { Arg, Ctx, Mutation, Resolver } from "type-graphql";
import type { GatewayContext } from "../context";
import { toUser } from "../users/user.type";
import { requireAccountAdmin } from "../auth/access";
import { CreateAccountInput, UpdateAccountSettingsInput } from "./account.input";
import { Account, CreateAccountPayload, toAccount } from "./account.type";

@Resolver()
export class AccountResolver {
  @Mutation(() => CreateAccountPayload, {
    description: "Public sign-up: creates an account and its root user, and signs root in.",
  })
  async createAccount(
    @Arg("input", () => CreateAccountInput) input: CreateAccountInput,
    @Ctx() ctx: GatewayContext,
  ): Promise<CreateAccountPayload> {
    const { services } = ctx;
    const meta = { requestId: ctx.requestId, sourceIp: ctx.sourceIp };
    const { account, root } = await services.accounts.create(input, meta);
    const session = await services.sessions.issue(root, {
      kind: "password",
      mfaAuthenticated: false,
      ttlSeconds: services.config.SESSION_TTL_SECONDS,
    });
    const rootUser = toUser(root);
    return Object.assign(new CreateAccountPayload(), {
      account: toAccount(account),
      rootUser,
      session: { ...session, user: rootUser },
    });
  }

  @Mutation(() => Account, { description: "Account-wide settings (root and administrators)." })
  async updateAccountSettings(
    @Arg("input", () => UpdateAccountSettingsInput) input: UpdateAccountSettingsInput,
    @Ctx() ctx: GatewayContext,
  ): Promise<Account> {
    const principal = requireAccountAdmin(ctx);
    const meta = { requestId: ctx.requestId, sourceIp: ctx.sourceIp };
    return toAccount(await ctx.services.accounts.updateSettings(principal, input, meta));
  }
}
