/** Prints the benchmark's one table: each figure beside its same-run baseline. */
export interface Row {
  workload: string;
  figure: string;
  baseline: string;
  ratio: number;
  target: string;
}

export function printTable(rows: Row[]): string {
  const header = ["workload", "figure", "baseline (same run)", "ratio", "target", "met"];
  const lines = rows.map((r) => [
    r.workload,
    r.figure,
    r.baseline,
    r.ratio.toFixed(2),
    r.target,
    meets(r) ? "yes" : "no",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [fmt(header), fmt(widths.map((w) => "-".repeat(w))), ...lines.map(fmt)].join("\n");
}

/** A target reads like ">= 0.30x" or "<= 1.50x". */
function meets(row: Row): boolean {
  const match = /([<>]=)\s*([\d.]+)x/.exec(row.target);
  if (!match) return true;
  const bound = Number(match[2]);
  return match[1] === ">=" ? row.ratio >= bound : row.ratio <= bound;
}

export const fmtRate = (perSecond: number) => `${Math.round(perSecond).toLocaleString("en-US")}/s`;
export const fmtMs = (ms: number) => `${ms.toFixed(2)} ms`;
