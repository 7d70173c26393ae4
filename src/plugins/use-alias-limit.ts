import type { ApolloServerPlugin } from "@apollo/server";
import { operationLimitExceeded } from "./limit-error";
import { operationShape } from "./operation-shape";

export interface AliasLimitOptions {
  /**
   * Aliased fields an operation may hold, each use of a fragment counted. Aliases are how one
   * request repeats a field, so this bounds, say, how many `enableMfaDevice` guesses one POST
   * can carry. Default 10.
   */
  maxAliases?: number;
}

/** Refuses an operation with more than `maxAliases` aliases before any of them runs. */
export function useAliasLimit({ maxAliases = 10 }: AliasLimitOptions = {}): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, operation }) {
          // No operation by that name: execution refuses the request itself.
          if (!operation) return;
          const { aliases } = operationShape(document, operation);
          if (aliases > maxAliases) {
            throw operationLimitExceeded(
              "ALIASES",
              `The operation uses ${aliases} aliases; at most ${maxAliases} are allowed.`,
              maxAliases,
            );
          }
        },
      };
    },
  };
}
