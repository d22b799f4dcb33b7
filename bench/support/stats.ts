/** Small statistics and table helpers shared by the benchmarks. */

/** Returns the `p`th percentile (0–100, nearest rank) of `samples`; NaN when there are none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))] as number;
}

/** Median and range of repeated measurements of one figure. */
export interface Spread {
  /** Median of the repetitions. */
  median: number;
  /** Smallest repetition. */
  min: number;
  /** Largest repetition. */
  max: number;
}

/** Summarizes repetitions of one figure as median and range (values rounded to 3 decimals). */
export function spread(values: readonly number[]): Spread {
  const round = (n: number) => Math.round(n * 1000) / 1000;
  return {
    median: round(percentile(values, 50)),
    min: round(Math.min(...values)),
    max: round(Math.max(...values)),
  };
}

/** Formats a spread as `median (min–max)` with `digits` decimals. */
export function showSpread(s: Spread, digits = 2): string {
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
}

/** Prints rows as an aligned text table; the first row is the header. */
export function printTable(title: string, rows: readonly (readonly string[])[]): void {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  console.log(`\n${title}`);
  for (const [index, row] of rows.entries()) {
    console.log(`  ${row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join("  ")}`);
    if (index === 0) console.log(`  ${widths.map((w) => "-".repeat(w)).join("  ")}`);
  }
}

/** Runs `task` for every index in 0..count-1 with at most `concurrency` running at once. */
export async function runConcurrently(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}
