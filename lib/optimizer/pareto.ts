/**
 * The Pareto report of a budget search: every model the search verified on the validation
 * split is a point (exact .eom bytes, latency, validation accuracy); the front is
 * the points no other point beats on both the objective and accuracy.
 */
export type Objective = 'size' | 'latency';

export interface ParetoPoint {
  id: number;
  /** 'float': the model as given; 'uniform': one setting for every layer, no pruning; 'search': a step of the greedy path. */
  source: 'float' | 'uniform' | 'search';
  label: string;
  /** Layer name -> setting key ('int4/g128/u0.6'). */
  settings: Record<string, string>;
  bytes: number;
  /** Estimated from the per-layer latency table, or for a CNN measured on the whole model (null when latency was not measured). */
  latencyUs: number | null;
  validationAccuracy: number;
  /** Percentage points below the float model on the validation split. */
  accuracyDrop: number;
  /** Within the accuracy budget and without target issues. */
  withinBudget: boolean;
  onFront: boolean;
  /** How many reasons the model does not fit the target (absent when it fits). */
  targetIssues?: number;
}

export function objectiveValue(p: Pick<ParetoPoint, 'bytes' | 'latencyUs'>, objective: Objective): number {
  return objective === 'size' ? p.bytes : (p.latencyUs ?? Infinity);
}

/** Ids of the points on the front, by objective ascending: each is more accurate than every point at least as small (fast). */
export function paretoFront(points: ParetoPoint[], objective: Objective): number[] {
  const sorted = [...points].sort(
    (a, b) => objectiveValue(a, objective) - objectiveValue(b, objective) || b.validationAccuracy - a.validationAccuracy || a.id - b.id,
  );
  const front: number[] = [];
  let best = -Infinity;
  for (const p of sorted) {
    if (p.validationAccuracy > best) {
      front.push(p.id);
      best = p.validationAccuracy;
    }
  }
  return front;
}

/** The point the search returns: the smallest (fastest) within budget; ties go to the more accurate, then the first verified. */
export function bestWithinBudget(points: ParetoPoint[], objective: Objective): ParetoPoint | undefined {
  let best: ParetoPoint | undefined;
  for (const p of points) {
    if (!p.withinBudget) continue;
    const d = best ? objectiveValue(p, objective) - objectiveValue(best, objective) : -1;
    if (!best || d < 0 || (d === 0 && p.validationAccuracy > best.validationAccuracy)) best = p;
  }
  return best;
}
