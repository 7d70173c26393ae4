import { describe, expect, it } from "vitest";
import { databaseErrorStatus, formatError } from "../../src/errors";

/** A Prisma known-request error as it reaches formatError: a message and a P-code. */
const prismaError = (code: string) => Object.assign(new Error(`prisma ${code}`), { code });

describe("database failures the caller may retry", () => {
  it.each(["P1001", "P2024", "P2028", "P2034"])(
    "answer %s (unreachable, exhausted, transaction expired or in conflict) as SERVICE_UNAVAILABLE",
    (code) => {
      const formatted = formatError(
        { message: "prisma failed", extensions: { code: "INTERNAL_SERVER_ERROR" } },
        () => undefined,
        prismaError(code),
      );
      expect(formatted.extensions).toMatchObject({ code: "SERVICE_UNAVAILABLE" });
      expect(formatted.message).not.toContain("prisma");
      expect(databaseErrorStatus(prismaError(code))).toBe(503);
    },
  );

  it("still masks an unknown failure as INTERNAL_SERVER_ERROR", () => {
    const formatted = formatError(
      { message: "boom", extensions: { code: "INTERNAL_SERVER_ERROR" } },
      () => undefined,
      prismaError("P2000"),
    );
    expect(formatted).toMatchObject({ message: "Internal server error." });
  });
});
