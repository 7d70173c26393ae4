import { Arg, Ctx, Int, Mutation, Query, Resolver } from "type-graphql";
import type { GatewayContext } from "../context";
import { requireAccountAdmin, requirePrincipal } from "../auth/access";
import { CreateUserInput, DeleteUserInput } from "./user.input";
import { toUser, User, UserConnection } from "./user.type";
import { DeletePayload } from "../common/payloads";

@Resolver(() => User)
export class UserResolver {
  @Query(() => User, { description: "A user by name, or the caller when no name is given." })
  async user(
    @Arg("userName", () => String, { nullable: true }) userName: string | null,
    @Ctx() ctx: GatewayContext,
  ): Promise<User> {
    const principal = requirePrincipal(ctx);
    return toUser(await ctx.services.users.findVisible(principal, userName));
  }

  @Query(() => UserConnection, { description: "Users of the caller's account, by name." })
  async users(
    @Ctx() ctx: GatewayContext,
    @Arg("pathPrefix", () => String, { nullable: true }) pathPrefix?: string,
    @Arg("first", () => Int, { nullable: true }) first?: number,
    @Arg("after", () => String, { nullable: true }) after?: string,
  ): Promise<UserConnection> {
    const principal = requireAccountAdmin(ctx);
    const page = await ctx.services.users.list(principal, { pathPrefix, first, after });
    return { ...page, edges: page.edges.map((e) => ({ cursor: e.cursor, node: toUser(e.node) })) };
  }

  @Mutation(() => User)
  async createUser(
    @Arg("input", () => CreateUserInput) input: CreateUserInput,
    @Ctx() ctx: GatewayContext,
  ): Promise<User> {
    const principal = requireAccountAdmin(ctx);
    const meta = { requestId: ctx.requestId, sourceIp: ctx.sourceIp };
    return toUser(await ctx.services.users.create(principal, input, meta));
  }

  @Mutation(() => DeletePayload, { description: "Refused while the user has an MFA device." })
  async deleteUser(
    @Arg("input", () => DeleteUserInput) input: DeleteUserInput,
    @Ctx() ctx: GatewayContext,
  ): Promise<DeletePayload> {
    const principal = requireAccountAdmin(ctx);
    await ctx.services.users.delete(principal, input.userName, {
      requestId: ctx.requestId,
      sourceIp: ctx.sourceIp,
    });
    return { deleted: true };
  }
}
