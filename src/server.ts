/**
 * Builds the gateway: an Express app with Apollo Server on /graphql and the operational
 * endpoints. Building is separate from listening so tests use the very same server.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { ApolloServer } from "@apollo/server";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import {
  ApolloServerPluginInlineTraceDisabled,
  ApolloServerPluginLandingPageDisabled,
} from "@apollo/server/plugin/disabled";
import { expressMiddleware } from "@as-integrations/express5";
import express from "express";
import type { GraphQLSchema } from "graphql";
import type { GatewayConfig } from "./config";
import type { GatewayContext } from "./context";
import { clientAddress, trustProxy } from "./common/source-bucket";
import { formatError } from "./errors";
import { createEntityLoaders } from "./federation/entity-loaders";
import { EntityReferenceService } from "./federation/entity-reference.service";
import { createGraphiQLHandler } from "./http/graphiql";
import { httpErrorHandler } from "./http/http-errors";
import { corsFor } from "./http/cors";
import { documentSizeLimit } from "./http/document-limit";
import { requestId, requestIdOf } from "./http/request-id";
import { sharedFor } from "./http/shared-probe";
import { createGatewayMetrics, type GatewayMetrics } from "./observability/metrics";
import { useRequestLogging } from "./observability/use-request-logging";
import { useRequestMetrics } from "./observability/use-request-metrics";
import { useAliasLimit } from "./plugins/use-alias-limit";
import { useCostLimit } from "./plugins/use-cost-limit";
import { useDepthLimit } from "./plugins/use-depth-limit";
import { useDatabaseErrorStatus } from "./plugins/use-database-error-status";
import { noSubscriptions } from "./plugins/no-subscriptions";
import { useOneTimeResultsAlone } from "./plugins/use-one-time-results-alone";
import { useRootFieldLimit } from "./plugins/use-root-field-limit";
import { useWellFormedText } from "./plugins/use-well-formed-text";
import { buildGatewaySchema } from "./schema/build";
import type { Services } from "./services";
import { checkReadiness } from "./health";

export interface GatewayDeps {
  services: Services;
  schema?: GraphQLSchema;
  /**
   * Where /metrics reads from. Pass the metrics the worker client was instrumented with
   * (src/observability/instrumented-worker.ts) so verification outcomes are counted; without
   * it the gateway still times its own requests.
   */
  metrics?: GatewayMetrics;
}

export interface Gateway {
  app: express.Express;
  httpServer: http.Server;
  apollo: ApolloServer<GatewayContext>;
  listen(port: number, host: string): Promise<string>;
  stop(): Promise<void>;
}

export async function createGateway(deps: GatewayDeps): Promise<Gateway> {
  const { services } = deps;
  const { config, logger } = services;
  const metrics =
    deps.metrics ?? createGatewayMetrics({ maxOperationNames: config.METRICS_MAX_OPERATION_NAMES });
  const entityReferences = new EntityReferenceService(services.db);
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", trustProxy(config.TRUST_PROXY));
  const httpServer = http.createServer(app);

  const apollo = new ApolloServer<GatewayContext>({
    schema: deps.schema ?? (await buildGatewaySchema()),
    logger,
    includeStacktraceInErrorResponses: false,
    // main.ts owns SIGTERM/SIGINT and stops things in order; Apollo's own handler would race it
    // (it stops the server, then re-raises the signal into ours, and the drain never finished).
    stopOnTerminationSignals: false,
    introspection: config.GRAPHQL_INTROSPECTION,
    // Without introspection, "did you mean …?" suggestions would spell the schema out anyway.
    hideSchemaDetailsFromClientErrors: !config.GRAPHQL_INTROSPECTION,
    // Stated although they are Apollo 5's defaults: this endpoint relies on both.
    csrfPrevention: true,
    allowBatchedHttpRequests: false,
    parseOptions: { maxTokens: config.GRAPHQL_MAX_TOKENS },
    validationRules: [noSubscriptions],
    formatError: (formatted, error) =>
      formatError(
        formatted,
        (masked, original) =>
          logger.error({ err: original, path: masked.path }, "unexpected error masked"),
        error,
      ),
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      // Apollo's own landing pages load from a CDN; ours (below) is local, or there is none.
      ApolloServerPluginLandingPageDisabled(),
      // Federated traces (ftv1) are for Apollo's hosted usage reporting, which this does not use;
      // off, no caller can ask for per-field timings of the gateway's work.
      ApolloServerPluginInlineTraceDisabled(),
      useDepthLimit({ maxDepth: config.GRAPHQL_MAX_DEPTH }),
      useAliasLimit({ maxAliases: config.GRAPHQL_MAX_ALIASES }),
      useRootFieldLimit({ maxRootFields: config.GRAPHQL_MAX_ROOT_FIELDS }),
      useOneTimeResultsAlone(),
      useCostLimit({
        maxCost: config.GRAPHQL_MAX_COST,
        verificationCost: config.GRAPHQL_VERIFICATION_COST,
      }),
      useWellFormedText(),
      useDatabaseErrorStatus(),
      useRequestMetrics(metrics),
      useRequestLogging(),
    ],
  });
  await apollo.start();

  app.use(requestId());
  app.get("/health", (_req, res) => {
    res.json({ status: "ok" });
  });
  const readiness = sharedFor(config.PROBE_CACHE_MS, () => checkReadiness(services));
  app.get("/ready", async (_req, res) => {
    const report = await readiness();
    res.status(report.ready ? 200 : 503).json(report);
  });
  // METRICS_PORT 0: on the public port; else on a listener of its own.
  const metricsServer =
    config.METRICS_ENABLED && config.METRICS_PORT > 0
      ? metricsListener(config, metrics)
      : undefined;
  if (config.METRICS_ENABLED && !metricsServer)
    app.get("/metrics", metricsHandler(config, metrics));

  const refused = metrics.refused;
  if (config.GRAPHQL_IDE) app.get("/graphql", await createGraphiQLHandler());
  app.use(
    "/graphql",
    corsFor(config.CORS_ORIGINS),
    express.json({ limit: config.HTTP_BODY_LIMIT_BYTES }),
    documentSizeLimit(config.GRAPHQL_MAX_DOCUMENT_BYTES, refused),
    expressMiddleware(apollo, {
      context: async ({ req, res }) => {
        const requestId = requestIdOf(res);
        const token = /^Bearer (.+)$/i.exec(req.get("authorization") ?? "")?.[1];
        const principal = token ? await services.sessions.authenticate(token.trim()) : null;
        return {
          services,
          principal,
          requestId,
          sourceIp: clientAddress(req.ip, req.socket.remoteAddress),
          logger: logger.child({ requestId }),
          loaders: createEntityLoaders(entityReferences),
        };
      },
    }),
  );
  app.use(httpErrorHandler(logger, refused));

  return {
    app,
    httpServer,
    apollo,
    async listen(port, host) {
      if (metricsServer) await listenOn(metricsServer, config.METRICS_PORT, config.METRICS_HOST);
      return `${await listenOn(httpServer, port, host)}/graphql`;
    },
    // Apollo's drain plugin stops accepting connections and waits for in-flight requests.
    async stop() {
      await apollo.stop();
      if (metricsServer?.listening) {
        const closed = new Promise((resolve) => metricsServer.close(resolve));
        // A scrape is never worth waiting for at shutdown, and a half-sent one would hold it.
        metricsServer.closeAllConnections();
        await closed;
      }
    },
  };
}

function metricsHandler(config: GatewayConfig, metrics: GatewayMetrics): express.RequestHandler {
  const render = sharedFor(config.PROBE_CACHE_MS, () => metrics.registry.metrics());
  return async (_req, res) => {
    res.type(metrics.registry.contentType).send(await render());
  };
}

/** /metrics on a port of its own (METRICS_PORT), off the public one. */
function metricsListener(config: GatewayConfig, metrics: GatewayMetrics): http.Server {
  const app = express();
  app.disable("x-powered-by");
  app.get("/metrics", metricsHandler(config, metrics));
  const server = http.createServer(app);
  // Scrapers send a bare GET; anything slower is not one.
  server.headersTimeout = 5000;
  server.requestTimeout = 10_000;
  return server;
}

/** Listens and returns the bound origin, `http://host:port`. */
function listenOn(server: http.Server, port: number, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const { port: bound } = server.address() as AddressInfo;
      resolve(`http://${host.includes(":") ? `[${host}]` : host}:${bound}`);
    });
  });
}
