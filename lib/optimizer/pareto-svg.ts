/**
 * The Pareto chart of a budget search as a standalone SVG: the objective (model bytes or
 * estimated latency, log scale) against validation accuracy, the budget line, the front,
 * the chosen model and the best uniform one. Markers that would overlap are drawn once with
 * a count; labels are numbers placed where they collide with nothing, and a table under the
 * chart says what each number is. Points far below the budget are drawn as arrows on the
 * bottom edge, so one bad setting does not squash the interesting part of the chart.
 */
import type { AutoOptimizeReport } from './auto-optimize';
import { objectiveValue, type ParetoPoint } from './pareto';

const W = 900;
const PLOT = { left: 80, right: 860, top: 60, bottom: 440 };
const R = 5;
const FONT = 12;
const CHAR_W = 6.8; // average advance of the 12 px sans-serif digits and letters used here
const LINE_H = 17;
const COLORS = { float: '#6b7280', uniform: '#2563eb', search: '#ea580c', budget: '#dc2626', front: '#9ca3af', chosen: '#16a34a' };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const pct = (x: number) => `${(x * 100).toFixed(2)} %`;

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}
const overlaps = (a: Box, b: Box) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

/** 1-2-5 ticks covering [lo, hi] on a log axis; 1..9 when the range is too narrow for four of those. */
function logTicks(lo: number, hi: number): number[] {
  const ticks = (steps: number[]) => {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
      for (const m of steps) {
        const v = m * 10 ** e;
        if (v >= lo && v <= hi) out.push(v);
      }
    return out;
  };
  const coarse = ticks([1, 2, 5]);
  return coarse.length >= 4 ? coarse : ticks([1, 2, 3, 4, 5, 6, 7, 8, 9]);
}

function linearTicks(lo: number, hi: number, count: number): number[] {
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) ticks.push(Number(v.toFixed(10)));
  return ticks;
}

function formatObjective(v: number, objective: AutoOptimizeReport['objective']): string {
  if (objective === 'latency') return `${v < 10 ? v.toFixed(1) : v.toFixed(0)} µs`;
  return v >= 1e6 ? `${(v / 1e6).toFixed(v >= 1e7 ? 0 : 1)} MB` : v >= 1e3 ? `${(v / 1e3).toFixed(0)} kB` : `${v} B`;
}

/** Splits at double spaces (between layers) so no line is longer than `max` characters where it can be helped. */
function wrap(line: string, max: number): string[] {
  const parts = line.split('  ');
  const out = [''];
  for (const part of parts) {
    const cur = out[out.length - 1];
    if (cur && cur.length + 2 + part.length > max - 6) out.push(part);
    else out[out.length - 1] = cur ? `${cur}  ${part}` : part;
  }
  return out;
}

interface Marker {
  points: ParetoPoint[];
  x: number;
  y: number;
}

export function paretoSvg(report: AutoOptimizeReport): string {
  const { objective, points } = report;
  const value = (p: ParetoPoint) => objectiveValue(p, objective);
  const plotted = points.filter((p) => Number.isFinite(value(p)) && value(p) > 0);
  const refAcc = report.reference.validationAccuracy;
  const budgetAcc = refAcc - report.maxAccuracyDrop / 100;
  // A CNN's verified models are timed whole (cnn-layers.ts), and its many layers are listed only where they differ from float32.
  const cnn = report.sensitivity.layers.some((l) => l.op === 'Conv');

  // Axes: log objective; accuracy from a little above the best to a floor below the budget line.
  const xs = plotted.map(value);
  const [xLo, xHi] = [Math.min(...xs) / 1.25, Math.max(...xs) * 1.25];
  const yHi = Math.min(1, Math.max(...plotted.map((p) => p.validationAccuracy)) + 0.002);
  const yFloor = budgetAcc - Math.max(3 * (refAcc - budgetAcc), 0.015);
  const yLo = Math.max(Math.min(...plotted.map((p) => p.validationAccuracy)) - 0.002, yFloor);
  const sx = (v: number) => PLOT.left + ((Math.log(v) - Math.log(xLo)) / (Math.log(xHi) - Math.log(xLo))) * (PLOT.right - PLOT.left);
  const sy = (a: number) => PLOT.bottom - ((Math.max(a, yLo) - yLo) / (yHi - yLo)) * (PLOT.bottom - PLOT.top);

  const out: string[] = [];
  const text = (x: number, y: number, s: string, attrs = '') =>
    out.push(`<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(s)}</text>`);

  // Grid and axes.
  for (const t of logTicks(xLo, xHi)) {
    const x = sx(t);
    out.push(`<line x1="${x.toFixed(1)}" y1="${PLOT.top}" x2="${x.toFixed(1)}" y2="${PLOT.bottom}" stroke="#e5e7eb"/>`);
    text(x, PLOT.bottom + 18, formatObjective(t, objective), 'text-anchor="middle"');
  }
  for (const t of linearTicks(yLo * 100, yHi * 100, 6)) {
    const y = sy(t / 100);
    out.push(`<line x1="${PLOT.left}" y1="${y.toFixed(1)}" x2="${PLOT.right}" y2="${y.toFixed(1)}" stroke="#e5e7eb"/>`);
    text(PLOT.left - 8, y + 4, `${t.toFixed(1)}`, 'text-anchor="end"');
  }
  out.push(
    `<rect x="${PLOT.left}" y="${PLOT.top}" width="${PLOT.right - PLOT.left}" height="${PLOT.bottom - PLOT.top}" fill="none" stroke="#374151"/>`,
  );
  const xTitle =
    objective === 'size' ? 'model size (.eom bytes, log scale)' : `${cnn ? 'measured' : 'estimated'} latency per call (µs, log scale)`;
  text((PLOT.left + PLOT.right) / 2, PLOT.bottom + 40, xTitle, 'text-anchor="middle" font-weight="bold"');
  text(
    18,
    (PLOT.top + PLOT.bottom) / 2,
    `validation top-1 accuracy (%, ${report.validationRows} rows)`,
    `text-anchor="middle" font-weight="bold" transform="rotate(-90 18 ${(PLOT.top + PLOT.bottom) / 2})"`,
  );

  // The budget line.
  const by = sy(budgetAcc);
  out.push(
    `<line x1="${PLOT.left}" y1="${by.toFixed(1)}" x2="${PLOT.right}" y2="${by.toFixed(1)}" stroke="${COLORS.budget}" stroke-dasharray="6 4" stroke-width="1.5"/>`,
  );
  const taken: Box[] = [];
  const budgetLabel = `budget: ${report.maxAccuracyDrop} points below float32 (${pct(budgetAcc)})`;
  const budgetBox = { x: PLOT.right - 6 - budgetLabel.length * CHAR_W, y: by - 6 - FONT, w: budgetLabel.length * CHAR_W, h: FONT + 4 };
  text(budgetBox.x, by - 7, budgetLabel, `fill="${COLORS.budget}"`);
  taken.push(budgetBox);

  // Markers: one per position; points that would overlap join the marker already there.
  const chosenId = report.chosen.point;
  const uniformId = report.bestUniform?.point;
  const priority = (p: ParetoPoint) => (p.id === chosenId ? 0 : p.id === uniformId ? 1 : p.source === 'float' ? 2 : p.onFront ? 3 : 4);
  const below = plotted.filter((p) => p.validationAccuracy < yLo);
  const markers: Marker[] = [];
  for (const p of [...plotted].filter((q) => q.validationAccuracy >= yLo).sort((a, b) => priority(a) - priority(b) || a.id - b.id)) {
    const [x, y] = [sx(value(p)), sy(p.validationAccuracy)];
    const near = markers.find((m) => Math.hypot(m.x - x, m.y - y) < 2 * R + 2);
    if (near) near.points.push(p);
    else markers.push({ points: [p], x, y });
  }
  // The front as a step line under the markers.
  const front = plotted.filter((p) => p.onFront && p.validationAccuracy >= yLo).sort((a, b) => value(a) - value(b));
  if (front.length > 1) {
    const d = front.map((p, i) => `${i ? 'L' : 'M'}${sx(value(p)).toFixed(1)} ${sy(p.validationAccuracy).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${COLORS.front}" stroke-width="1.5"/>`);
  }
  for (const m of markers) taken.push({ x: m.x - R - 1, y: m.y - R - 1, w: 2 * R + 2, h: 2 * R + 2 });
  for (const m of markers) {
    const p = m.points[0];
    const color = COLORS[p.source];
    const fill = p.withinBudget ? color : 'white';
    if (p.source === 'uniform')
      out.push(
        `<rect x="${(m.x - R).toFixed(1)}" y="${(m.y - R).toFixed(1)}" width="${2 * R}" height="${2 * R}" fill="${fill}" stroke="${color}" stroke-width="1.5"/>`,
      );
    else out.push(`<circle cx="${m.x.toFixed(1)}" cy="${m.y.toFixed(1)}" r="${R}" fill="${fill}" stroke="${color}" stroke-width="1.5"/>`);
    if (m.points.some((q) => q.id === chosenId))
      out.push(
        `<circle cx="${m.x.toFixed(1)}" cy="${m.y.toFixed(1)}" r="${R + 4}" fill="none" stroke="${COLORS.chosen}" stroke-width="2"/>`,
      );
  }
  // Points below the chart: arrows on the bottom edge, counted.
  if (below.length) {
    const groups = new Map<number, ParetoPoint[]>();
    for (const p of below) {
      const x = Math.round(sx(value(p)) / (4 * R)) * 4 * R;
      groups.set(x, [...(groups.get(x) ?? []), p]);
    }
    for (const [x, ps] of groups) {
      const y = PLOT.bottom - 2;
      out.push(`<path d="M${x - R} ${y - 2 * R} L${x + R} ${y - 2 * R} L${x} ${y} Z" fill="${COLORS[ps[0].source]}" opacity="0.6"/>`);
      taken.push({ x: x - R, y: y - 2 * R, w: 2 * R, h: 2 * R });
      markers.push({ points: ps, x, y: y - R });
    }
  }

  // Number labels where they hit nothing; the table below says what they are.
  const labelled = markers.filter((m) => m.points.some((p) => priority(p) <= 3 || p.source === 'uniform'));
  for (const m of labelled) {
    const label = m.points.map((p) => `#${p.id}`).join(',');
    const w = label.length * CHAR_W;
    const h = FONT + 2;
    const spots = [
      [R + 4, -h / 2],
      [-R - 4 - w, -h / 2],
      [-w / 2, -R - 4 - h],
      [-w / 2, R + 4],
      [R + 3, -R - h],
      [-R - 3 - w, -R - h],
      [R + 3, R],
      [-R - 3 - w, R],
      [R + 14, -h / 2],
      [-R - 14 - w, -h / 2],
      [-w / 2, -R - 16 - h],
      [-w / 2, R + 16],
    ];
    // Next to the marker if there is room, else further out on a spiral, with a leader line.
    for (let radius = 22; radius <= 160; radius += 12)
      for (let a = 0; a < 360; a += 30) {
        const [cx, cy] = [m.x + radius * Math.cos((a * Math.PI) / 180), m.y - radius * Math.sin((a * Math.PI) / 180)];
        spots.push([cx - m.x - (Math.cos((a * Math.PI) / 180) < 0 ? w : 0), cy - m.y - h / 2]);
      }
    for (const [i, [dx, dy]] of spots.entries()) {
      const box = { x: m.x + dx, y: m.y + dy, w, h };
      const inside = box.x >= PLOT.left + 2 && box.x + w <= PLOT.right - 2 && box.y >= PLOT.top + 2 && box.y + h <= PLOT.bottom - 2;
      if (!inside || taken.some((t) => overlaps(t, box))) continue;
      taken.push(box);
      if (i >= 12) {
        const [lx, ly] = [Math.min(Math.max(m.x, box.x), box.x + w), Math.min(Math.max(m.y, box.y), box.y + h)];
        out.push(
          `<line x1="${m.x.toFixed(1)}" y1="${m.y.toFixed(1)}" x2="${lx.toFixed(1)}" y2="${ly.toFixed(1)}" stroke="#9ca3af" stroke-width="0.8"/>`,
        );
      }
      text(box.x, box.y + h - 3, label, m.points.some((p) => p.id === chosenId) ? `fill="${COLORS.chosen}" font-weight="bold"` : '');
      break;
    }
  }

  // Title, legend and the table of labelled points.
  const head = [
    `<text x="${PLOT.left}" y="24" font-size="16" font-weight="bold">${esc(`${report.model}: ${objective === 'size' ? 'size' : 'latency'} against validation accuracy`)}</text>`,
    `<text x="${PLOT.left}" y="44">${esc(`objective ${objective}, budget ${report.maxAccuracyDrop} points, ${points.length} verified models, seed ${report.seed}${report.fineTune ? `, fine-tuned ${report.fineTune.epochs} epoch(s)` : ''}`)}</text>`,
  ];
  const legendY = PLOT.bottom + 62;
  // Legend entries laid out left to right by their text widths.
  const swatches: Array<[(x: number, y: number) => string, string]> = [
    [(x, y) => `<circle cx="${x + R}" cy="${y - 4}" r="${R}" fill="${COLORS.float}"/>`, 'float32'],
    [
      (x, y) => `<rect x="${x}" y="${y - 9}" width="${2 * R}" height="${2 * R}" fill="${COLORS.uniform}"/>`,
      'uniform (one setting, all layers)',
    ],
    [(x, y) => `<circle cx="${x + R}" cy="${y - 4}" r="${R}" fill="${COLORS.search}"/>`, 'per-layer search'],
    [(x, y) => `<circle cx="${x + R}" cy="${y - 4}" r="${R}" fill="white" stroke="#374151"/>`, 'hollow: over budget'],
    [(x, y) => `<circle cx="${x + R}" cy="${y - 4}" r="${R + 2}" fill="none" stroke="${COLORS.chosen}" stroke-width="2"/>`, 'chosen'],
    [(x, y) => `<path d="M${x} ${y - 9} L${x + 2 * R} ${y - 9} L${x + R} ${y} Z" fill="${COLORS.float}" opacity="0.6"/>`, 'below the axis'],
  ];
  const legend: string[] = [];
  let lx = PLOT.left;
  for (const [draw, label] of swatches) {
    legend.push(draw(lx, legendY), `<text x="${lx + 2 * R + 6}" y="${legendY}">${esc(label)}</text>`);
    lx += 2 * R + 6 + label.length * CHAR_W + 16;
  }
  legend.push(
    `<text x="${PLOT.left}" y="${legendY + 20}" fill="#4b5563">${esc(cnn ? 'int8/ch: static int8, a scale per output channel; f0.25: 25 % of the filters of the channel space pruned' : 'int4/g32: 4-bit weights, a scale per 32 along K (ch: per output channel); u0.6: 60 % of weights pruned; n0.25: 25 % of units pruned')}</text>`,
  );

  const rows = labelled.flatMap((m) => m.points).sort((a, b) => a.id - b.id);
  const tableTop = legendY + 46;
  const maxChars = Math.floor((W - PLOT.left - 10) / CHAR_W);
  const lines = rows.flatMap((p) => {
    const tags = [p.id === chosenId ? 'CHOSEN' : '', p.id === uniformId ? 'best uniform' : '', p.onFront ? 'front' : '']
      .filter(Boolean)
      .join(', ');
    const changed = Object.entries(p.settings).filter(([, s]) => !cnn || s !== 'fp32');
    const rest = changed.length < Object.keys(p.settings).length ? ',  others fp32' : '';
    const settings = changed.length ? changed.map(([n, s]) => `${n}: ${s}`).join(',  ') + rest : 'every layer fp32';
    const latency = p.latencyUs !== null ? `, ${p.latencyUs.toFixed(2)} µs` : '';
    const line = `#${p.id}  ${p.bytes.toLocaleString('en-US')} B${latency}, ${pct(p.validationAccuracy)}${tags ? ` [${tags}]` : ''}:  ${settings}`;
    const style = p.id === chosenId ? `fill="${COLORS.chosen}" font-weight="bold"` : '';
    return wrap(line, maxChars).map((l, i) => ({ text: i ? `      ${l}` : l, style }));
  });
  const table = lines.map((l, i) => `<text x="${PLOT.left}" y="${tableTop + i * LINE_H}" ${l.style}>${esc(l.text)}</text>`);
  const test =
    report.chosen.testAccuracy !== undefined && report.reference.testAccuracy !== undefined
      ? `test split (never seen by the search): float32 ${pct(report.reference.testAccuracy)}, ${report.bestUniform?.testAccuracy !== undefined ? `best uniform ${pct(report.bestUniform.testAccuracy)}, ` : ''}chosen ${pct(report.chosen.testAccuracy)}`
      : '';
  const foot = test ? [`<text x="${PLOT.left}" y="${tableTop + lines.length * LINE_H + 8}">${esc(test)}</text>`] : [];
  const height = tableTop + lines.length * LINE_H + (test ? 24 : 4);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="${FONT}">`,
    `<rect width="${W}" height="${height}" fill="white"/>`,
    ...head,
    ...out,
    ...legend,
    ...table,
    ...foot,
    '</svg>',
    '',
  ].join('\n');
}
