/**
 * The baseline for workload (a): a minimal Apollo Server 5 answering `{ hello }`, started as
 * its own process like the gateway, so both are measured the same way.
 */
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";

async function main() {
  const server = new ApolloServer({
    typeDefs: "type Query { hello: String }",
    resolvers: { Query: { hello: () => "world" } },
  });
  const { url } = await startStandaloneServer(server, {
    listen: { port: Number(process.env.PORT ?? 4400), host: "127.0.0.1" },
  });
  console.log(url);
  process.on("SIGTERM", () => void server.stop().then(() => process.exit(0)));
}

void main();
