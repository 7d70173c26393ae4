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
import { badInput } from "../errors";

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
  const subgraph = buildSubgraphSchema({
    typeDefs: parse(`${LINK}\n\n${printSchemaWithDirectives(schema)}`),
    resolvers: resolvers as GraphQLResolverMap<unknown>,
  });
  refuseUnknownEntityTypes(subgraph, Object.keys(referenceResolvers));
  return subgraph;
}

/**
 * A representation naming no entity of this subgraph (`{"__typename":"Account"}`, or none at
 * all) is the caller's mistake, but @apollo/subgraph throws a plain Error for it, which would
 * read as INTERNAL_SERVER_ERROR. Checked first, as BAD_USER_INPUT.
 */
function refuseUnknownEntityTypes(subgraph: GraphQLSchema, entityTypes: string[]): void {
  const field = subgraph.getQueryType()?.getFields()._entities;
  const resolve = field?.resolve;
  if (!field || !resolve) throw new Error("the subgraph schema has no _entities resolver");
  const known = new Set(entityTypes);
  field.resolve = (source, args: { representations?: unknown[] }, context, info) => {
    for (const representation of args.representations ?? []) {
      const typeName = (representation as { __typename?: unknown } | null)?.__typename;
      if (typeof typeName !== "string" || !known.has(typeName)) {
        throw badInput(
          `Each representation needs a __typename of an entity of this subgraph: ${entityTypes.join(", ")}.`,
        );
      }
    }
    return resolve(source, args, context, info);
  };
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
