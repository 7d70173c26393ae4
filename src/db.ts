import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaClient } from "../generated/prisma/client";
import { LOST_CONNECTION } from "./errors";

export type Db = PrismaClient;

/**
 * Statements on the hottest path (authenticating a request, getSessionToken), run on the same
 * pool as Prisma but without its client runtime: Prisma's `$queryRaw` cost 0.47–0.68 ms of
 * gateway CPU per statement on the benchmark machine against 0.16–0.22 ms on `pg` (README,
 * "Benchmarks"). Everything else stays on Prisma.
 */
export interface HotSql {
  /**
   * Runs one statement. A `name` makes it a prepared statement on each pooled connection, so
   * PostgreSQL parses and plans it once per connection instead of on every call.
   */
  rows<T>(text: string, values: unknown[], name?: string): Promise<T[]>;
}

export interface Database {
  db: Db;
  sql: HotSql;
}

/**
 * The Rust-free Prisma client over the pg driver adapter (no native engine needed).
 * `onConnectionError` hears of connections the server ended (a restart, a failover, an
 * administrator); the statement that was using one fails on its own and is answered
 * SERVICE_UNAVAILABLE.
 */
export function createDatabase(
  connectionString: string,
  poolSize = 10,
  onConnectionError: (error: Error) => void = () => undefined,
): Database {
  const pool = new ReleasingPool({
    connectionString,
    max: poolSize,
    // A pool with every connection busy answers within this (SERVICE_UNAVAILABLE), never hangs.
    connectionTimeoutMillis: 5000,
  });
  // pg emits 'error' on a client whose connection the server ends: on the pool while the client
  // is idle, on the client itself while it is checked out. An 'error' event nobody listens for
  // throws, and took the whole gateway down when PostgreSQL ended its connections. The pool
  // passes an idle client's error on to itself too; the client's own listener reports it.
  pool.on("connect", (client) => client.on("error", onConnectionError));
  pool.on("error", () => undefined);
  // The adapter ends the pool on $disconnect, as it would a pool of its own.
  const db = new PrismaClient({ adapter: new PrismaPg(pool, { disposeExternalPool: true }) });
  return { db, sql: createHotSql(pool) };
}

/**
 * A pool whose checked-out clients go back to it, as broken, when the server ends their
 * connection. Prisma's adapter never releases a transaction's client whose connection was lost
 * (its ROLLBACK fails first), so each such loss kept one connection checked out for ever; a
 * PostgreSQL restart under load left the pool empty and every request waiting. The release it
 * may still make later is then a no-op instead of pg's double-release error.
 */
class ReleasingPool extends pg.Pool {
  override connect(): Promise<pg.PoolClient>;
  override connect(
    callback: (
      err: Error | undefined,
      client: pg.PoolClient | undefined,
      done: (release?: unknown) => void,
    ) => void,
  ): void;
  override connect(callback?: Parameters<pg.Pool["connect"]>[0]): Promise<pg.PoolClient> | void {
    // The callback form is pool.query's own, which releases its client itself on any error.
    if (callback) return super.connect(callback);
    return super.connect().then(releasedWhenLost);
  }
}

function releasedWhenLost(client: pg.PoolClient): pg.PoolClient {
  const release = client.release.bind(client);
  let released = false;
  const onLost = (error: Error) => setImmediate(() => client.release(error));
  client.release = (error?: Error | boolean) => {
    if (released) return;
    released = true;
    client.removeListener("error", onLost);
    release(error);
  };
  client.on("error", onLost);
  return client;
}

export function createDb(connectionString: string, poolSize = 10): Db {
  return createDatabase(connectionString, poolSize).db;
}

/**
 * Prisma stores DateTime as `timestamp(3)` without a time zone, in UTC. pg would read such a
 * value in the process's local zone; read it as UTC, as Prisma does. (Parameters are passed as
 * ISO strings by the callers, which PostgreSQL likewise takes as UTC wall time.)
 */
const TIMESTAMP_WITHOUT_ZONE = 1114;
const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === TIMESTAMP_WITHOUT_ZONE
      ? (text: string) => new Date(`${text.replace(" ", "T")}Z`)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

function createHotSql(pool: pg.Pool): HotSql {
  return {
    async rows<T>(text: string, values: unknown[], name?: string) {
      try {
        const result = await pool.query({ name, text, values, types });
        return result.rows as T[];
      } catch (error) {
        throw asAdapterError(error);
      }
    },
  };
}

/**
 * Gives a pg failure the shape Prisma's adapter gives it, so src/errors.ts maps both alike:
 * PostgreSQL's SQLSTATE as `originalCode`, and a failed or lost connection as
 * `DatabaseNotReachable` (SERVICE_UNAVAILABLE, never an internal error). Anything else is a
 * bug and passes unchanged.
 */
function asAdapterError(error: unknown): unknown {
  if (error instanceof pg.DatabaseError && error.code) {
    return Object.assign(new Error(`PostgreSQL refused the statement (${error.code})`), {
      cause: { kind: "postgres", originalCode: error.code },
    });
  }
  if (isConnectionFailure(error)) {
    return Object.assign(new Error("PostgreSQL is unreachable"), {
      cause: { kind: "DatabaseNotReachable" },
    });
  }
  return error;
}

/** A socket error (ECONNREFUSED, ECONNRESET…) or pg's own words for a lost connection. */
function isConnectionFailure(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return true;
  return LOST_CONNECTION.test(error.message);
}
