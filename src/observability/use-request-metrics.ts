import type { ApolloServerPlugin } from "@apollo/server";
import { Kind, type OperationDefinitionNode } from "graphql";
import type { OperationLimit } from "../plugins/limit-error";
import type { GatewayMetrics } from "./metrics";
import { outcomeOf, responseErrors } from "./response-errors";

/**
 * Times every GraphQL request into `mfa_gateway_graphql_request_duration_seconds` by operation
 * (its first root field, see GatewayMetrics.operationLabel), type and outcome, and counts refusals by
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
              operation: metrics.operationLabel(firstRootField(context.operation)),
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

/**
 * The operation's first root field (`signIn`, `getSessionToken`): a name from the schema, so the
 * label's values are a closed set. Client-chosen operation names are not: anyone could send a
 * hundred long ones and take every series (and megabytes of every scrape) for themselves.
 */
function firstRootField(operation: OperationDefinitionNode | undefined): string | undefined {
  const first = operation?.selectionSet.selections[0];
  if (!first) return undefined;
  return first.kind === Kind.FIELD ? first.name.value : "fragment";
}
