/**
 * Loads the worker's Lua scripts from this folder at startup and runs them by SHA with a
 * NOSCRIPT fallback, on a single Redis or a Redis Cluster alike.
 *
 * Each script's key count is in its file name (`verify-3.lua`), as in BullMQ, so a call with
 * the wrong number of keys fails here instead of silently reading the wrong ARGV.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { createClient, createCluster } from "redis";
import { isCluster } from "../redis-connection";

/**
 * Any node-redis v5 connection the worker can run scripts on; other modules import this.
 * It is exactly what `createClient()` and `createCluster()` return (RESP2, the bundled modules):
 * spelled with `any` generics instead, a connection would no longer fit the structural
 * interfaces other modules declare, because node-redis's reply types widen with RESP3.
 */
export type RedisConnection = ReturnType<typeof createClient> | ReturnType<typeof createCluster>;

export interface LuaScript {
  readonly name: string;
  readonly numberOfKeys: number;
  readonly source: string;
  readonly sha1: string;
}

export interface ScriptRunner {
  run(script: LuaScript, keys: string[], args: (string | number)[]): Promise<unknown>;
  /**
   * True on a single Redis, where one script may touch keys of any slot. The verifier then
   * checks the per-source budget inside its device script instead of in a call of its own.
   */
  readonly singleNode?: boolean;
}

/** The scripts the verifier needs, by role. */
export interface WorkerScripts {
  verify: LuaScript;
  /** The per-source budget on Redis Cluster, where it lives outside the device's slot. */
  attemptBudget: LuaScript;
  storedResult: LuaScript;
  forgetDevice: LuaScript;
}

const FILE_PATTERN = /^([a-z][a-z-]*)-(\d+)\.lua$/;

/**
 * The folder holding the .lua files: beside this module when run from source (tsx, vitest), or
 * back in the source tree when run from `dist/` (tsc does not copy .lua files).
 */
export function defaultScriptDir(): string {
  const candidates = [__dirname, path.resolve(__dirname, "../../../worker/lua")];
  const found = candidates.find((dir) => existsSync(path.join(dir, "verify-3.lua")));
  if (!found) throw new Error(`Lua scripts not found in ${candidates.join(" or ")}`);
  return found;
}

/** Reads every `<name>-<keys>.lua` in `dir`. Synchronous on purpose: it runs once, at startup. */
export function loadScripts(dir = defaultScriptDir()): Map<string, LuaScript> {
  const scripts = new Map<string, LuaScript>();
  for (const file of readdirSync(dir).sort()) {
    const match = FILE_PATTERN.exec(file);
    if (!match) continue;
    const source = withIncludes(readFileSync(path.join(dir, file), "utf8"), dir);
    scripts.set(match[1]!, {
      name: match[1]!,
      numberOfKeys: Number(match[2]),
      source,
      sha1: createHash("sha1").update(source).digest("hex"),
    });
  }
  return scripts;
}

/**
 * Pastes `--#include <file>.lua` lines with that file of `dir`: Redis scripts cannot call one
 * another, so rules two scripts share live in one file this way. The SHA is that of the result.
 */
function withIncludes(source: string, dir: string): string {
  return source.replace(/^--#include ([a-z][a-z-]*\.lua)$/gm, (_, name: string) =>
    readFileSync(path.join(dir, name), "utf8"),
  );
}

/** One script of this folder by name, for the gateway's budgets (attempt-budget-1.lua). */
export function loadScript(name: string, dir?: string): LuaScript {
  const script = loadScripts(dir).get(name);
  if (!script) throw new Error(`Lua script ${name} is missing`);
  return script;
}

let cached: WorkerScripts | undefined;

export function loadWorkerScripts(dir?: string): WorkerScripts {
  if (cached && dir === undefined) return cached;
  const all = loadScripts(dir);
  const pick = (name: string): LuaScript => {
    const script = all.get(name);
    if (!script) throw new Error(`Lua script ${name} is missing`);
    return script;
  };
  const scripts = {
    verify: pick("verify"),
    attemptBudget: pick("attempt-budget"),
    storedResult: pick("stored-result"),
    forgetDevice: pick("forget-device"),
  };
  if (dir === undefined) cached = scripts;
  return scripts;
}

/** The two calls both node-redis clients and clusters offer; a cluster routes on keys[0]. */
interface Evaluator {
  evalSha(sha1: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  eval(source: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith("NOSCRIPT");
}

/**
 * Runs scripts on `connection`. EVALSHA first; a server that has not seen the script yet (a new
 * node, a restart, SCRIPT FLUSH) answers NOSCRIPT and gets the full source once through EVAL,
 * which also caches it there.
 */
export function createScriptRunner(connection: RedisConnection): ScriptRunner {
  const redis: Evaluator = connection;
  return {
    singleNode: !isCluster(connection),
    async run(script, keys, args) {
      if (keys.length !== script.numberOfKeys) {
        throw new Error(`${script.name} takes ${script.numberOfKeys} keys, got ${keys.length}`);
      }
      const options = { keys, arguments: args.map(String) };
      try {
        return await redis.evalSha(script.sha1, options);
      } catch (error) {
        if (!isNoScript(error)) throw error;
        return await redis.eval(script.source, options);
      }
    },
  };
}
