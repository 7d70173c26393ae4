import type { ApolloServerPlugin } from "@apollo/server";
import type { OperationLimit } from "../plugins/limit-error";
import type { GatewayMetrics } from "./metrics";
import { outcomeOf, responseErrors } from "./response-errors";

/**
 * Times every GraphQL request into `mfa_gateway_graphql_request_duration_seconds` by operation
 * name (bounded, see GatewayMetrics.operationLabel), type and outcome, and counts refusals by
 * the endpoint's limits. Requests Apollo refuses before the pipeline (CSRF, batching) are not
 * GraphQL requests yet and are not timed here.
 */
export function useRequestMetrics(metrics: GatewayMetrics): ApolloServerPlugin {
  return {
    async requestDidStart() {
      const started = performance.now();
      return {
        async willSendResponse(context) {
          const errors = responseErrors(context);
          for (const error of errors) {
            const limit = error.extensions?.limit;
            if (typeof limit === "string") metrics.refused(limit as OperationLimit);
          }
          metrics.requestDuration.observe(
            {
              operation: metrics.operationLabel(context.operationName),
              type: context.operation?.operation ?? "unknown",
              outcome: outcomeOf(errors),
            },
            (performance.now() - started) / 1000,
          );
        },
      };
    },
  };
}
