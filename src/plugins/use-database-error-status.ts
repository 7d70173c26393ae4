import type { ApolloServerPlugin } from "@apollo/server";
import { databaseErrorStatus } from "../errors";

/**
 * Gives an answer carrying a known database failure (text PostgreSQL cannot store, a unique
 * violation, PostgreSQL down) the HTTP status its error code has everywhere else: 400 for
 * BAD_USER_INPUT, 503 for SERVICE_UNAVAILABLE. Without it such answers went out as 200.
 */
export function useDatabaseErrorStatus(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ errors, response }) {
          if (!errors?.length || (response.http.status ?? 200) !== 200) return;
          for (const error of errors) {
            const status = databaseErrorStatus(error);
            if (status !== undefined) {
              response.http.status = status;
              return;
            }
          }
        },
      };
    },
  };
}
