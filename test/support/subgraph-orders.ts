/**
 * A second subgraph for composition tests: an `orders` service whose orders have an owner that
 * is a `User` of the MFA gateway, referenced by key alone. A router composing both resolves
 * `orders { owner { userName } }` by asking the gateway for `_entities`.
 */
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { buildSubgraphSchema } from "@apollo/subgraph";
import { parse } from "graphql";

export interface Order {
  id: string;
  total: number;
  ownerUserId: string;
}

const TYPE_DEFS = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])

  type Query {
    orders: [Order!]!
  }

  type Order @key(fields: "id") {
    id: ID!
    total: Int!
    owner: User
  }

  type User @key(fields: "userId", resolvable: false) {
    userId: ID!
  }
`);

export async function startOrdersSubgraph(
  orders: readonly Order[],
): Promise<{ url: string; stop(): Promise<void> }> {
  const server = new ApolloServer({
    schema: buildSubgraphSchema({
      typeDefs: TYPE_DEFS,
      resolvers: {
        Query: { orders: () => orders },
        Order: {
          owner: (order: Order) => ({ __typename: "User", userId: order.ownerUserId }),
        },
      },
    }),
    logger: { debug() {}, info() {}, warn() {}, error: console.error },
  });
  const { url } = await startStandaloneServer(server, { listen: { port: 0, host: "127.0.0.1" } });
  return { url, stop: () => server.stop() };
}
