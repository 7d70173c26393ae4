import "reflect-metadata";
import { buildSchema } from "type-graphql";
import type { GraphQLSchema } from "graphql";
import { AccountResolver } from "../accounts/account.resolver";
import { AuthResolver } from "../auth/auth.resolver";
import { UserResolver } from "../users/user.resolver";

export const RESOLVERS = [AccountResolver, AuthResolver, UserResolver] as const;

/** Builds the executable schema from the resolver classes. */
export function buildGatewaySchema(): Promise<GraphQLSchema> {
  return buildSchema({
    resolvers: [...RESOLVERS],
    validate: false,
    // Resolvers throw our ApiError subclasses; type-graphql need not wrap them.
    emitSchemaFile: false,
  });
}
