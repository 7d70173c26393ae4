/** Writes the emitted subgraph SDL (with @link and @key) to schema.graphql (npm run schema:emit). */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { printGatewaySchema } from "./print";

async function main() {
  const target = join(__dirname, "..", "..", "..", "schema.graphql");
  writeFileSync(target, await printGatewaySchema());
  console.log(`wrote ${target}`);
}

void main();
