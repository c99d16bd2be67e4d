/** Wall-clock medians for the demo's latency column (benchmarks use the `benchmark` package). */
export interface Timing {
  medianMs: number;
  runs: number;
}

export function timeSync(fn: () => void, options: { minRuns?: number; minMs?: number; maxRuns?: number } = {}): Timing {
  const { minRuns = 5, minMs = 200, maxRuns = 10000 } = options;
  fn(); // warm-up
  const samples: number[] = [];
  const start = process.hrtime.bigint();
  while (samples.length < maxRuns && (samples.length < minRuns || Number(process.hrtime.bigint() - start) / 1e6 < minMs)) {
    const t0 = process.hrtime.bigint();
    fn();
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  samples.sort((a, b) => a - b);
  return { medianMs: samples[samples.length >> 1], runs: samples.length };
}
