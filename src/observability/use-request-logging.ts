import type { ApolloServerPlugin } from "@apollo/server";
import type { GatewayContext } from "../context";
import { outcomeOf, responseErrors } from "./response-errors";

/**
 * One JSON line per GraphQL request on the request's own logger, so it carries the request id
 * that the auth worker's lines for the same request carry as `trace`. It names the operation,
 * its type, the outcome and the error codes; never the document or the variables, which may
 * hold codes and passwords.
 */
export function useRequestLogging(): ApolloServerPlugin<GatewayContext> {
  return {
    async requestDidStart() {
      const started = performance.now();
      return {
        async willSendResponse(context) {
          const errors = responseErrors(context);
          context.contextValue.logger.info(
            {
              operationName: context.operationName ?? null,
              operationType: context.operation?.operation ?? null,
              outcome: outcomeOf(errors),
              errorCodes: errors.map((error) => error.extensions?.code),
              durationMs: Math.round((performance.now() - started) * 10) / 10,
              userId: context.contextValue.principal?.userId ?? null,
            },
            "graphql request",
          );
        },
      };
    },
  };
}
