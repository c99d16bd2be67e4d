/**
 * Gradual pruning schedule of Zhu & Gupta, "To prune, or not to prune" (2017):
 * s_t = s_f + (s_i - s_f) · (1 - (t - t0) / (t1 - t0))³ for t0 <= t <= t1:
 * prune fast while many redundant weights remain, slowly near the target.
 */
export interface PolynomialSchedule {
  initialSparsity?: number;
  finalSparsity: number;
  beginStep: number;
  endStep: number;
}

export function polynomialSparsity(step: number, s: PolynomialSchedule): number {
  const si = s.initialSparsity ?? 0;
  if (step <= s.beginStep) return si;
  if (step >= s.endStep) return s.finalSparsity;
  const progress = (step - s.beginStep) / (s.endStep - s.beginStep);
  return s.finalSparsity + (si - s.finalSparsity) * (1 - progress) ** 3;
}
