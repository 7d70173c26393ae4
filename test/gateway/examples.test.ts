import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildSchema, parse, validate } from "graphql";
import { describe, expect, it } from "vitest";

const root = join(__dirname, "..", "..");

describe("docs/examples.graphql", () => {
  it("holds only operations that are valid against schema.graphql", () => {
    // The committed SDL carries federation directives; strip the @link schema extension,
    // which plain buildSchema does not know, and declare the directives it uses.
    const sdl = readFileSync(join(root, "schema.graphql"), "utf8").replace(
      /extend schema[\s\S]*?\n\n/,
      "",
    );
    const schema = buildSchema(
      `directive @key(fields: String!, resolvable: Boolean = true) repeatable on OBJECT | INTERFACE\n${sdl}`,
      { assumeValidSDL: true },
    );
    const document = parse(readFileSync(join(root, "docs", "examples.graphql"), "utf8"));
    const errors = validate(schema, document).map((e) => e.message);
    expect(errors).toEqual([]);
    expect(document.definitions.length).toBeGreaterThan(20);
  });
});
