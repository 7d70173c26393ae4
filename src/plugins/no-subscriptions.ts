/**
 * The schema has no Subscription type, so graphql-js has no root type to check a subscription's
 * fields against and lets any one through validation; execution then throws, which surfaced as
 * an INTERNAL_SERVER_ERROR with a logged stack. This rule refuses them as the client fault
 * they are (Apollo answers a failed validation with 400, folded into BAD_USER_INPUT).
 */
import { GraphQLError, type ValidationRule } from "graphql";

export const noSubscriptions: ValidationRule = (context) => ({
  OperationDefinition(node) {
    if (node.operation === "subscription") {
      context.reportError(new GraphQLError("This service has no subscriptions.", { nodes: node }));
    }
  },
});
