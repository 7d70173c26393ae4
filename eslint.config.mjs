import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", "dist/", "generated/", "test-output/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // Unused bindings are caught by tsc (noUnusedLocals); `_`-prefixed ones are deliberate.
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_" },
      ],
      // Floating promises in request paths lose errors silently.
      "no-void": "off",
      eqeqeq: ["error", "smart"],
      "no-console": "off",
    },
  },
);
