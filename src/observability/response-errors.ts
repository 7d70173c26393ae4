import type { GraphQLRequestContextWillSendResponse } from "@apollo/server";
import type { GraphQLFormattedError } from "graphql";

/** The errors a response carries, as the client will see them (codes already normalised). */
export function responseErrors(
  context: Pick<GraphQLRequestContextWillSendResponse<object>, "response">,
): readonly GraphQLFormattedError[] {
  const { body } = context.response;
  return (body.kind === "single" ? body.singleResult.errors : body.initialResult.errors) ?? [];
}

/** `ok`, or the code of the first error: a closed set, since formatError normalises codes. */
export function outcomeOf(errors: readonly GraphQLFormattedError[]): string {
  return errors.length === 0
    ? "ok"
    : String(errors[0]?.extensions?.code ?? "INTERNAL_SERVER_ERROR");
}
