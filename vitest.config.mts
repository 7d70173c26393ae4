import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // type-graphql is CommonJS; without this alias a test would load graphql's ESM build as a
    // second copy and fail with "Cannot use GraphQLObjectType from another module or realm".
    alias: { graphql: "graphql/index.js" },
  },
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: ["test/setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    reporters: ["default"],
  },
});
