/**
 * Creates the PostgreSQL database named in DATABASE_URL when it is missing, so the quick
 * start works on a fresh machine. Connects to the server's `postgres` database to do it.
 * With --recreate it drops the database first (the test suite starts from an empty one).
 */
import { Client } from "pg";
import { DEFAULT_DATABASE_URL } from "../src/config";

async function main() {
  const target = new URL(process.env.DATABASE_URL || DEFAULT_DATABASE_URL);
  const name = decodeURIComponent(target.pathname.slice(1));
  if (!/^[\w-]+$/.test(name)) throw new Error(`refusing odd database name ${JSON.stringify(name)}`);
  const admin = new URL(target);
  admin.pathname = "/postgres";
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    if (process.argv.includes("--recreate")) {
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    }
    const found = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (found.rowCount === 0) {
      await client.query(`CREATE DATABASE "${name}"`);
      console.log(`created database ${name}`);
    }
  } finally {
    await client.end();
  }
}

main().catch((error) => {
  console.error("could not ensure the database:", error instanceof Error ? error.message : error);
  process.exit(1);
});
