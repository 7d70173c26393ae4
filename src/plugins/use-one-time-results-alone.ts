import type { ApolloServerPlugin } from "@apollo/server";
import { badInput } from "../errors";
import { rootFieldNames } from "./operation-shape";

/**
 * Mutations whose result is a secret shown once and paid for with something that cannot be had
 * again: a device's seed, recovery codes (the old set is void), or a session bought with a code,
 * challenge or recovery that is now spent. (signIn and createAccount are not among them: a lost
 * answer costs only signing in again.)
 */
const ONE_TIME_RESULTS: ReadonlySet<string> = new Set([
  "answerMfaChallenge",
  "getSessionToken",
  "createVirtualMfaDevice",
  "generateRecoveryCodes",
  "completeRootRecovery",
]);

/**
 * Refuses, before anything runs, a mutation that selects one of these beside any other field
 * (or beside itself under another alias). Every mutation field is non-null, so an error in one
 * field nulls the whole `data`: the other field's secret would be made, or its code spent, and
 * never shown.
 */
export function useOneTimeResultsAlone(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, operation }) {
          if (operation?.operation !== "mutation") return;
          const names = rootFieldNames(document, operation);
          const oneTime = names.find((name) => ONE_TIME_RESULTS.has(name));
          if (oneTime && names.length > 1) {
            throw badInput(
              `${oneTime} must be the only field of its mutation: its result is shown once, ` +
                "and an error in another field would discard it. Send the fields separately.",
            );
          }
        },
      };
    },
  };
}
