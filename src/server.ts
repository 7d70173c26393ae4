/**
 * Builds the gateway: an Express app with Apollo Server on /graphql and the operational
 * endpoints. Building is separate from listening so tests use the very same server.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { ApolloServer } from "@apollo/server";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import { expressMiddleware } from "@as-integrations/express5";
import express from "express";
import type { GraphQLSchema } from "graphql";
import type { GatewayContext } from "./context";
import { formatError } from "./errors";
import { buildGatewaySchema } from "./schema/build";
import type { Services } from "./services";
import { checkReadiness } from "./health";

export interface GatewayDeps {
  services: Services;
  schema?: GraphQLSchema;
}

export interface Gateway {
  app: express.Express;
  httpServer: http.Server;
  apollo: ApolloServer<GatewayContext>;
  listen(port: number, host: string): Promise<string>;
  stop(): Promise<void>;
}

const REQUEST_ID_PATTERN = /^[\w.-]{1,64}$/;

export async function createGateway(deps: GatewayDeps): Promise<Gateway> {
  const { services } = deps;
  const { config, logger } = services;
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", config.TRUST_PROXY);
  const httpServer = http.createServer(app);

  const apollo = new ApolloServer<GatewayContext>({
    schema: deps.schema ?? (await buildGatewaySchema()),
    includeStacktraceInErrorResponses: false,
    formatError: (formatted, error) =>
      formatError(formatted, (masked, original) =>
        logger.error({ err: original, path: masked.path }, "unexpected error masked"),
      error),
    plugins: [ApolloServerPluginDrainHttpServer({ httpServer })],
  });
  await apollo.start();

  app.get("/health", (_req, res) => {
    res.json({ status: "ok" });
  });
  app.get("/ready", async (_req, res) => {
    const report = await checkReadiness(services);
    res.status(report.ready ? 200 : 503).json(report);
  });

  app.use(
    "/graphql",
    express.json({ limit: "100kb" }),
    expressMiddleware(apollo, {
      context: async ({ req, res }) => {
        const incoming = req.get("x-request-id");
        const requestId = incoming && REQUEST_ID_PATTERN.test(incoming) ? incoming : randomUUID();
        res.setHeader("x-request-id", requestId);
        const token = /^Bearer (.+)$/i.exec(req.get("authorization") ?? "")?.[1];
        const principal = token ? await services.sessions.authenticate(token.trim()) : null;
        return {
          services,
          principal,
          requestId,
          sourceIp: req.ip ?? "unknown",
          logger: logger.child({ requestId }),
        };
      },
    }),
  );

  return {
    app,
    httpServer,
    apollo,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        httpServer.once("error", reject);
        httpServer.listen(port, host, () => {
          const { port: bound } = httpServer.address() as AddressInfo;
          resolve(`http://${host.includes(":") ? `[${host}]` : host}:${bound}/graphql`);
        });
      }),
    // Apollo's drain plugin stops accepting connections and waits for in-flight requests.
    stop: () => apollo.stop(),
  };
}
