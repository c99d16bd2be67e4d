/**
 * The search's path through per-layer settings: the greedy path (HAQ/AutoQ-style) from the
 * sensitivity table, and the local refinement after the bisection. Both see the settings only
 * through the table's rows: an objective value x (bytes or gridded microseconds), the logit
 * error they add, and their accuracy drop alone.
 */
import type { SensitivityRow, SensitivityTable } from './sensitivity';

interface Step {
  layer: number;
  row: SensitivityRow;
}

/** The lower convex hull of (objective, error) from the least-error setting towards the smallest objective. */
function hull(rows: SensitivityRow[], x: (r: SensitivityRow) => number): SensitivityRow[] {
  let current = rows.reduce((a, b) => (b.logitError < a.logitError ? b : a));
  const out = [current];
  for (;;) {
    let next: SensitivityRow | undefined;
    let bestSlope = Infinity;
    for (const r of rows) {
      const dx = x(current) - x(r);
      if (!(dx > 0)) continue;
      const slope = (r.logitError - current.logitError) / dx;
      if (slope < bestSlope || (slope === bestSlope && next && (x(r) < x(next) || (x(r) === x(next) && r.bytesDelta < next.bytesDelta)))) {
        next = r;
        bestSlope = slope;
      }
    }
    if (!next) return out;
    out.push(next);
    current = next;
  }
}

/** Merges the layers' hulls, cheapest step first: the path from the start to the smallest model. */
export function greedyPath(table: SensitivityTable, x: (r: SensitivityRow) => number): Array<{ rows: SensitivityRow[] }> {
  const hulls = table.layers.map((l) => hull(l.candidates, x));
  const at = hulls.map(() => 0);
  const path = [{ rows: hulls.map((h) => h[0]) }];
  for (;;) {
    let best: Step | undefined;
    let bestSlope = Infinity;
    hulls.forEach((h, layer) => {
      const [cur, next] = [h[at[layer]], h[at[layer] + 1]];
      if (!next) return;
      const slope = (next.logitError - cur.logitError) / (x(cur) - x(next));
      if (slope < bestSlope) {
        best = { layer, row: next };
        bestSlope = slope;
      }
    });
    if (!best) return path;
    const { layer, row } = best as Step;
    at[layer]++;
    path.push({ rows: path[path.length - 1].rows.map((r, i) => (i === layer ? row : r)) });
  }
}

/**
 * Local search from the last step within budget: single-layer moves to any setting smaller
 * (faster) than the layer's current one whose predicted drops still add up to the budget,
 * biggest saving first; the first that verifies within budget is taken and the search goes
 * on from there, until `cap` verifications are spent or no move is left.
 */
export async function refine(
  start: SensitivityRow[],
  table: SensitivityTable,
  x: (r: SensitivityRow) => number,
  base: number,
  budget: number,
  cap: number,
  tryRows: (rows: SensitivityRow[], label: string) => Promise<boolean>,
): Promise<void> {
  let current = start;
  // A move that saves under 1 % of the model is not worth the risk of fitting the validation rows' noise.
  const minGain = 0.01 * Math.abs(start.reduce((s, r) => s + x(r), base));
  const tried = new Set<string>();
  let spent = 0;
  const drop = (rows: SensitivityRow[]) => rows.reduce((s, r) => s + Math.max(0, r.accuracyDrop), 0);
  while (spent < cap) {
    const moves: Array<{ rows: SensitivityRow[]; gain: number; error: number }> = [];
    table.layers.forEach((l, j) => {
      for (const r of l.candidates) {
        if (!(x(current[j]) - x(r) >= minGain)) continue;
        const rows = current.map((c, i) => (i === j ? r : c));
        const key = rows.map((c) => c.key).join(' ');
        if (tried.has(key) || drop(rows) > budget) continue;
        moves.push({ rows, gain: x(current[j]) - x(r), error: r.logitError - current[j].logitError });
      }
    });
    moves.sort((a, b) => b.gain - a.gain || a.error - b.error);
    let moved = false;
    for (const m of moves) {
      if (spent >= cap) break;
      tried.add(m.rows.map((c) => c.key).join(' '));
      spent++;
      if (await tryRows(m.rows, `refine ${spent}`)) {
        current = m.rows;
        moved = true;
        break;
      }
    }
    if (!moved) return;
  }
}
