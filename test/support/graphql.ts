/** A tiny GraphQL-over-HTTP client for tests: what a frontend does, nothing more. */
export interface GraphQLResponse<T = Record<string, unknown>> {
  status: number;
  data?: T | null;
  errors?: {
    message: string;
    path?: (string | number)[];
    extensions?: { code?: string; iamCode?: string; [key: string]: unknown };
  }[];
  headers: Headers;
  raw: string;
}

export async function gqlRequest<T = Record<string, unknown>>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  token?: string,
  extraHeaders: Record<string, string> = {},
): Promise<GraphQLResponse<T>> {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...extraHeaders,
    },
    body: JSON.stringify({ query, variables }),
  });
  const raw = await response.text();
  const body = JSON.parse(raw) as { data?: T | null; errors?: GraphQLResponse["errors"] };
  return {
    status: response.status,
    data: body.data,
    errors: body.errors,
    headers: response.headers,
    raw,
  };
}

/** The error code of the first error, or undefined when the call succeeded. */
export const errorCode = (res: GraphQLResponse<unknown>) => res.errors?.[0]?.extensions?.code;

/** Returns data or throws with the errors, for steps that must succeed. */
export function ok<T>(res: GraphQLResponse<T>): T {
  if (res.errors?.length || !res.data) {
    throw new Error(`GraphQL call failed: ${JSON.stringify(res.errors ?? res.raw)}`);
  }
  return res.data;
}
