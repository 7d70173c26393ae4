import type { ApolloServerPlugin } from "@apollo/server";
import { operationLimitExceeded } from "./limit-error";
import { operationShape } from "./operation-shape";

export interface DepthLimitOptions {
  /**
   * Deepest nesting of fields an operation may select. The deepest real path in this schema,
   * `mfaDevices → edges → node → virtualMfaDevice → user → userName`, is 6. Default 10.
   */
  maxDepth?: number;
}

/**
 * Refuses an operation nested deeper than `maxDepth` before it runs. Introspection fields are
 * not counted: GraphiQL's own schema query nests `ofType` far deeper than any real operation,
 * and introspection is switched off where the endpoint is public.
 */
export function useDepthLimit({ maxDepth = 10 }: DepthLimitOptions = {}): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, operation }) {
          // No operation by that name: execution refuses the request itself.
          if (!operation) return;
          const { depth } = operationShape(document, operation);
          if (depth > maxDepth) {
            throw operationLimitExceeded(
              "DEPTH",
              `The operation nests fields ${depth} deep; at most ${maxDepth} is allowed.`,
              maxDepth,
            );
          }
        },
      };
    },
  };
}
