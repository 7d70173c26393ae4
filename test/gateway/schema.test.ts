import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { printGatewaySchema } from "../../src/schema/print";

describe("schema.graphql", () => {
  it("matches the schema the code emits (run `npm run schema:emit` after changing types)", async () => {
    const committed = readFileSync(join(__dirname, "..", "..", "schema.graphql"), "utf8");
    expect(await printGatewaySchema()).toBe(committed);
  });
});
