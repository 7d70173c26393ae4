import type { ApolloServerPlugin } from "@apollo/server";
import { hasLoneSurrogate } from "../common/unicode";
import { badInput } from "../errors";

/** Walks the variables with a stack, not recursion, so deep nesting cannot overflow it. */
function anyLoneSurrogate(variables: unknown): boolean {
  const pending: unknown[] = [variables];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === "string") {
      if (hasLoneSurrogate(value)) return true;
    } else if (Array.isArray(value)) {
      for (const item of value) pending.push(item);
    } else if (value && typeof value === "object") {
      for (const [key, item] of Object.entries(value)) {
        if (hasLoneSurrogate(key)) return true;
        pending.push(item);
      }
    }
  }
  return false;
}

/**
 * Refuses variables holding lone surrogates before any resolver runs. JSON lets a client send
 * "\ud800", but no database column or hash can hold it faithfully (Prisma's query engine
 * rejects it outright), so it is a bad input, not an internal error. String literals in the
 * document need no check: graphql-js already refuses them when it parses.
 */
export function useWellFormedText(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ request }) {
          if (anyLoneSurrogate(request.variables)) {
            throw badInput("Text must be well-formed Unicode; a variable holds a lone surrogate.");
          }
        },
      };
    },
  };
}
