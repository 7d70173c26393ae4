import { printSchema } from "graphql";
import { buildGatewaySchema } from "./build";

/** The SDL exactly as committed in schema.graphql. */
export async function printGatewaySchema(): Promise<string> {
  return printSchema(await buildGatewaySchema()) + "\n";
}
