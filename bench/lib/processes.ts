/**
 * Starts the product for the benchmark as real processes from `dist/`: one gateway and N auth
 * workers, each with its own environment, and reads each process's peak resident memory
 * (VmHWM) from /proc when asked.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

export const ROOT = join(__dirname, "..", "..", "..");

export interface Proc {
  name: string;
  child: ChildProcess;
  /** Peak resident set size in MB, from /proc/<pid>/status. */
  peakRssMb(): number;
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

export function startProcess(name: string, script: string, env: Record<string, string>): Proc {
  const child = spawn(process.execPath, [...profilerArgs(name), join(ROOT, script)], {
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
