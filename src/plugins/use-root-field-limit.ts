import type { ApolloServerPlugin } from "@apollo/server";
import { operationLimitExceeded } from "./limit-error";
import { operationShape } from "./operation-shape";

export interface RootFieldLimitOptions {
  /**
   * Top-level fields an operation may select (`__typename` aside). Each root field of a
   * mutation is a mutation of its own, so this bounds the work one request starts. Default 10.
   */
  maxRootFields?: number;
}

/** Refuses an operation with more than `maxRootFields` root fields before any of them runs. */
export function useRootFieldLimit({
  maxRootFields = 10,
}: RootFieldLimitOptions = {}): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, operation }) {
          // No operation by that name: execution refuses the request itself.
          if (!operation) return;
          const { rootFields } = operationShape(document, operation);
          if (rootFields > maxRootFields) {
            throw operationLimitExceeded(
              "ROOT_FIELDS",
              `The operation selects ${rootFields} root fields; at most ${maxRootFields} are allowed.`,
              maxRootFields,
            );
          }
        },
      };
    },
  };
}
