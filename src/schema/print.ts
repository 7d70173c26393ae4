import { buildGatewaySchema } from "./build";
import { serviceSdl } from "../federation/subgraph";

/**
 * The SDL exactly as committed in schema.graphql: the subgraph's own answer to
 * `_service { sdl }`, with its `@link` and `@key` directives, so the file is what routers compose.
 */
export async function printGatewaySchema(): Promise<string> {
  return (await serviceSdl(await buildGatewaySchema())) + "\n";
}
