import type { ApolloServerPlugin } from "@apollo/server";
import { getNamedType, isLeafType } from "graphql";
// The CommonJS build, named explicitly: it shares graphql's CommonJS copy with type-graphql and
// Apollo wherever this runs, including under vitest, which would otherwise load its ESM build
// and with it a second graphql that refuses the schema ("another module or realm").
import { getComplexity, type ComplexityEstimator } from "graphql-query-complexity/cjs";
import { operationLimitExceeded } from "./limit-error";
import { badInput } from "../errors";

/**
 * Mutations that check a password or a TOTP code, each spending attempts and worker time, and
 * createAccount, which anyone may call and which hashes a password (scrypt) each time.
 */
export const VERIFICATION_MUTATIONS: readonly string[] = [
  "createAccount",
  "changePassword",
  "enableMfaDevice",
  "resyncMfaDevice",
  "rotateMfaDevice",
  "answerMfaChallenge",
  "getSessionToken",
  "signIn",
  "startRootRecovery",
  "completeRootRecovery",
];

export interface CostLimitOptions {
  /** Largest cost an operation may have. Default 10 000. */
  maxCost?: number;
  /**
   * Cost of each verification mutation. Default 3 000, so at most three fit under the default
   * maximum: one request cannot carry a volley of code guesses.
   */
  verificationCost?: number;
  verificationMutations?: readonly string[];
  /** Cost of any other mutation. Default 10. */
  mutationCost?: number;
  /** Page size assumed for a connection queried without `first`, as the resolvers do. Default 100. */
  defaultPageSize?: number;
}

/**
 * The cost scale: a scalar field costs 0 and any other field 1 plus what it selects; a
 * connection (a field with `first`) and `_entities` multiply what they select by the page size
 * or the number of representations; a mutation costs `mutationCost` or `verificationCost` plus
 * its payload. Introspection costs nothing (it is switched off where the endpoint is public).
 * So `users(first: 1000) { edges { node { userName } } }` costs 2 001.
 */
function costEstimator(
  options: Required<Omit<CostLimitOptions, "maxCost">> & {
    mutationType?: string;
  },
): ComplexityEstimator {
  const verification = new Set(options.verificationMutations);
  return ({ type, field, args, childComplexity }) => {
    if (field.name.startsWith("__")) return 0;
    if (type.name === options.mutationType) {
      const own = verification.has(field.name) ? options.verificationCost : options.mutationCost;
      return own + childComplexity;
    }
    if (field.name === "_entities") {
      const count = Array.isArray(args.representations) ? args.representations.length : 1;
      // Each representation is a row to read, however little is selected from it.
      return 1 + Math.max(1, count) * Math.max(1, childComplexity);
    }
    if (field.args.some((arg) => arg.name === "first")) {
      const first = typeof args.first === "number" ? args.first : options.defaultPageSize;
      return 1 + Math.max(1, first) * childComplexity;
    }
    return isLeafType(getNamedType(field.type)) ? 0 : 1 + childComplexity;
  };
}

/** Refuses an operation whose cost exceeds `maxCost` before any of it runs. */
export function useCostLimit({
  maxCost = 10_000,
  verificationCost = 3_000,
  verificationMutations = VERIFICATION_MUTATIONS,
  mutationCost = 10,
  defaultPageSize = 100,
}: CostLimitOptions = {}): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, operationName, request }) {
          const estimator = costEstimator({
            verificationCost,
            verificationMutations,
            mutationCost,
            defaultPageSize,
            mutationType: schema.getMutationType()?.name,
          });
          let cost: number;
          try {
            cost = getComplexity({
              schema,
              query: document,
              operationName: operationName ?? undefined,
              variables: request.variables ?? {},
              estimators: [estimator],
            });
          } catch (error) {
            const message = String((error as Error | undefined)?.message);
            // A bad variable: execution refuses it in its own words, and runs nothing.
            if (message.startsWith('Variable "$')) return;
            // A null sent for a variable with a default, used where null is not allowed, passes
            // validation and fails only its own field at execution: every field beside it would
            // still run, uncosted. Refuse the whole request. (graphql-js names the argument and
            // its type here; only an invalid literal would be printed, and validation refused
            // those already.)
            if (message.startsWith('Argument "')) throw badInput(message);
            // Anything else fails closed: an operation that cannot be costed does not run.
            if (!message.includes("maximum allowed number of nodes")) throw error;
            cost = Infinity;
          }
          if (cost > maxCost) {
            throw operationLimitExceeded(
              "COST",
              Number.isFinite(cost)
                ? `The operation costs ${cost}; at most ${maxCost} is allowed.`
                : `The operation is too large to cost; at most ${maxCost} is allowed.`,
              maxCost,
            );
          }
        },
      };
    },
  };
}
