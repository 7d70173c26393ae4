/**
 * Turns the type-graphql schema into an Apollo Federation 2 subgraph, as type-graphql's
 * examples/apollo-federation-2 does: print the schema with its directives (`@key` from the
 * entity classes), prepend the `@link` that imports them, and let `buildSubgraphSchema` add
 * `_service` and `_entities`. The resolvers are type-graphql's own, plus the reference resolvers.
 */
import { buildSubgraphSchema } from "@apollo/subgraph";
import type { GraphQLResolverMap } from "@apollo/subgraph/dist/schema-helper/resolverMap";
import { printSchemaWithDirectives } from "@graphql-tools/utils";
import { graphql, parse, type GraphQLSchema } from "graphql";
import { createResolversMap } from "type-graphql";

/** Federation 2.3: `@key` is all this subgraph uses; 2.3 is what @apollo/subgraph 2.14 composes. */
const LINK = `extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])`;

export type ReferenceResolvers = Record<
  string,
  { __resolveReference: (...args: never[]) => unknown }
>;

export function toSubgraphSchema(
  schema: GraphQLSchema,
  referenceResolvers: ReferenceResolvers,
): GraphQLSchema {
  const resolvers = createResolversMap(schema) as Record<string, object>;
  for (const [typeName, reference] of Object.entries(referenceResolvers)) {
    if (!resolvers[typeName]) throw new Error(`reference resolver for unknown type ${typeName}`);
    resolvers[typeName] = { ...resolvers[typeName], ...reference };
  }
  return buildSubgraphSchema({
    typeDefs: parse(`${LINK}\n\n${printSchemaWithDirectives(schema)}`),
    resolvers: resolvers as GraphQLResolverMap<unknown>,
  });
}

/** The SDL the subgraph answers to `_service { sdl }`: what a router composes. */
export async function serviceSdl(schema: GraphQLSchema): Promise<string> {
  const result = await graphql({ schema, source: "{ _service { sdl } }" });
  const sdl = (result.data?._service as { sdl?: unknown } | undefined)?.sdl;
  if (result.errors?.length || typeof sdl !== "string") {
    throw new Error(`the subgraph did not answer _service: ${JSON.stringify(result.errors)}`);
  }
  return sdl;
}
