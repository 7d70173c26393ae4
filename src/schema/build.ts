import "reflect-metadata";
import { buildSchema } from "type-graphql";
import type { GraphQLSchema } from "graphql";
import { AccountResolver } from "../accounts/account.resolver";
import { AuthResolver } from "../auth/auth.resolver";
import { UserResolver } from "../users/user.resolver";
import { MfaDeviceResolver } from "../mfa-devices/mfa-device.resolver";
import { RecoveryResolver } from "../recovery/recovery.resolver";
import { REFERENCE_RESOLVERS } from "../federation/reference-resolvers";
import { toSubgraphSchema } from "../federation/subgraph";

export const RESOLVERS = [
  AccountResolver,
  AuthResolver,
  UserResolver,
  MfaDeviceResolver,
  RecoveryResolver,
] as const;

/** Builds the executable schema from the resolver classes, as a Federation 2 subgraph. */
export async function buildGatewaySchema(): Promise<GraphQLSchema> {
  const schema = await buildSchema({
    resolvers: [...RESOLVERS],
    validate: false,
    // Resolvers throw our ApiError subclasses; type-graphql need not wrap them.
    emitSchemaFile: false,
  });
  return toSubgraphSchema(schema, REFERENCE_RESOLVERS);
}
