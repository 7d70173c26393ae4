/**
 * Starts the product for the benchmark as real processes from `dist/`: one gateway and N auth
 * workers, each with its own environment, and reads each process's peak resident memory
 * (VmHWM) from /proc when asked.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export const ROOT = join(__dirname, "..", "..", "..");

export interface Proc {
  name: string;
  child: ChildProcess;
  /** Peak resident set size in MB, from /proc/<pid>/status. */
  peakRssMb(): number;
  /** CPU seconds (user + system) the process has used so far, from /proc/<pid>/stat. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/**
 * BENCH_CPU_PROF names the processes to profile (comma-separated, e.g. "gateway,worker-1");
 * each then runs under `node --cpu-prof` and writes its .cpuprofile to bench-profiles/ on exit.
 */
function profilerArgs(name: string): string[] {
  const wanted = (process.env.BENCH_CPU_PROF ?? "").split(",").map((s) => s.trim());
  if (!wanted.includes(name) && !wanted.includes("all")) return [];
  return [
    "--cpu-prof",
    `--cpu-prof-dir=${join(ROOT, "bench-profiles")}`,
    `--cpu-prof-name=${name}-\${pid}.cpuprofile`,
  ];
}

export function startProcess(
  name: string,
  script: string,
  env: Record<string, string>,
  nodeArgs: string[] = [],
): Proc {
  const child = spawn(process.execPath, [...nodeArgs, ...profilerArgs(name), join(ROOT, script)], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (chunk) => {
    stderr = (stderr + String(chunk)).slice(-4000);
  });
  child.on("exit", (code, signal) => {
    if (code && code !== 0) console.error(`${name} exited ${code ?? signal}: ${stderr}`);
  });
  return {
    name,
    child,
    peakRssMb() {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
        const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
        return kb / 1024;
      } catch {
        return NaN;
      }
    },
    cpuSeconds: () => cpuSecondsOf(child.pid),
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 5000).unref();
      }),
  };
}

/** Polls a URL until it answers 200, or fails after the timeout. */
export async function waitForOk(url: string, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`${url} did not become ready`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Clock ticks per second of /proc/<pid>/stat; 100 on every Linux this runs on. */
const TICKS_PER_SECOND = 100;

/** A process's command name and CPU seconds (utime + stime), or undefined when it is gone. */
function readStat(
  pid: number | string | undefined,
): { command: string; cpuSeconds: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name is in parentheses and may itself hold spaces; the fields follow it.
    const close = stat.lastIndexOf(")");
    const fields = stat.slice(close + 2).split(" ");
    return {
      command: stat.slice(stat.indexOf("(") + 1, close),
      cpuSeconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND,
    };
  } catch {
    return undefined;
  }
}

/** utime + stime of a process in seconds, or NaN when it is gone. */
export function cpuSecondsOf(pid: number | undefined): number {
  return readStat(pid)?.cpuSeconds ?? NaN;
}

/**
 * Where the CPU of one workload went: each given process, Redis (INFO's own counters) and this
 * benchmark process (the load generator, and for (c) the gateway's worker client).
 */
export async function cpuMeter(
  redis: { info(section: string): Promise<string> },
  procs: Pick<Proc, "name" | "cpuSeconds">[],
) {
  const redisCpu = async () => {
    const info = await redis.info("cpu");
    const read = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1]);
    return read("used_cpu_user") + read("used_cpu_sys");
  };
  const postgresBefore = cpuSecondsByPid("postgres");
  const sample = async () => {
    const own = process.cpuUsage();
    return {
      redis: await redisCpu(),
      bench: (own.user + own.system) / 1e6,
      ...Object.fromEntries(procs.map((p) => [p.name, p.cpuSeconds()])),
    };
  };
  /**
   * PostgreSQL's CPU since the meter was made, per backend: one that started meanwhile counts
   * from zero, and one that exited takes its CPU with it, so this is a lower bound (a plain
   * sum of all backends could even fall below the first reading).
   */
  const postgresSeconds = () => {
    let total = 0;
    for (const [pid, seconds] of cpuSecondsByPid("postgres"))
      total += seconds - (postgresBefore.get(pid) ?? 0);
    return total;
  };
  /** Redis INFO commandstats: calls and microseconds spent inside each command. */
  const commandStats = async () => {
    const stats = new Map<string, { calls: number; usec: number }>();
    const info = await redis.info("commandstats");
    for (const match of info.matchAll(/cmdstat_([^:]+):calls=(\d+),usec=(\d+)/g))
      stats.set(match[1]!, { calls: Number(match[2]), usec: Number(match[3]) });
    return stats;
  };
  const before = await sample();
  const statsBefore = await commandStats();
  return {
    /** Redis commands per call since the meter was made (scripts' inner commands included). */
    async commandsPer(calls: number): Promise<Record<string, number>> {
      const after = await commandStats();
      const per = [...after]
        .map(
          ([name, n]) => [name, (n.calls - (statsBefore.get(name)?.calls ?? 0)) / calls] as const,
        )
        .filter(([, n]) => n >= 0.01)
        .sort((a, b) => b[1] - a[1]);
      return Object.fromEntries(per.map(([name, n]) => [name, Math.round(n * 100) / 100]));
    },
    /**
     * Microseconds Redis spent inside one `command` on average since the meter was made (its
     * own clock, so time the Redis process was descheduled mid-command counts too).
     */
    async microsecondsInside(command: string): Promise<number> {
      const after = (await commandStats()).get(command);
      const earlier = statsBefore.get(command) ?? { calls: 0, usec: 0 };
      if (!after || after.calls === earlier.calls) return NaN;
      return Math.round((after.usec - earlier.usec) / (after.calls - earlier.calls));
    },
    /** Microseconds of CPU per call since the meter was made, by process. */
    async microsecondsPer(calls: number): Promise<Record<string, number>> {
      const after = await sample();
      const perCall = (seconds: number) => Math.round((seconds * 1e6) / calls);
      return {
        ...Object.fromEntries(
          Object.entries(after).map(([name, seconds]) => [
            name,
            perCall(seconds - before[name as keyof typeof before]!),
          ]),
        ),
        postgres: perCall(postgresSeconds()),
      };
    },
  };
}

/** CPU seconds of every live process with this command name (all PostgreSQL backends, say). */
function cpuSecondsByPid(command: string): Map<string, number> {
  const seconds = new Map<string, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(entry); // undefined when the process ended while we looked
    if (stat?.command === command) seconds.set(entry, stat.cpuSeconds);
  }
  return seconds;
}
