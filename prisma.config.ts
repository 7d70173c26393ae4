import { PrismaPg } from "@prisma/adapter-pg";
import { defineConfig } from "prisma/config";

const DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/virtual_mfa";
process.env.DATABASE_URL ??= DEFAULT_DATABASE_URL;

// Migrations run on Prisma's WebAssembly schema engine through the pg driver adapter, so no
// native engine is downloaded (this machine reaches only the npm registry).
export default defineConfig({
  schema: "prisma/schema.prisma",
  experimental: { adapter: true },
  engine: "js",
  adapter: async () => new PrismaPg({ connectionString: process.env.DATABASE_URL! }),
});
