/** The Pareto front, the choice within budget and the SVG chart (no overlapping markers or labels, the budget line). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AutoOptimizeReport, ModelSummary } from '../lib/optimizer/auto-optimize';
import { bestWithinBudget, paretoFront, type ParetoPoint } from '../lib/optimizer/pareto';
import { paretoSvg } from '../lib/optimizer/pareto-svg';
import { rng } from './helpers';

function point(id: number, bytes: number, acc: number, over: Partial<ParetoPoint> = {}): ParetoPoint {
  return {
    id,
    source: 'search',
    label: `p${id}`,
    settings: { fc1: 'int4/ch', fc2: 'int8/ch' },
    bytes,
    latencyUs: bytes / 1e4,
    validationAccuracy: acc,
    accuracyDrop: (0.99 - acc) * 100,
    withinBudget: (0.99 - acc) * 100 <= 0.5 + 1e-9,
    onFront: false,
    ...over,
  };
}

test('front: each point more accurate than every point at least as small; the choice is the smallest within budget', () => {
  const pts = [
    point(0, 400_000, 0.99, { source: 'float' }),
    point(1, 100_000, 0.99),
    point(2, 50_000, 0.987),
    point(3, 50_000, 0.986),
    point(4, 30_000, 0.95),
    point(5, 60_000, 0.985),
  ];
  assert.equal(paretoFront(pts, 'size'), [4, 2, 1]);
  assert.equal(paretoFront(pts, 'latency'), [4, 2, 1]);
  assert.is(bestWithinBudget(pts, 'size')!.id, 2);
  // Equal objective: the more accurate wins, then the first verified.
  assert.is(bestWithinBudget([point(0, 10, 0.986), point(1, 10, 0.988), point(2, 10, 0.988)], 'size')!.id, 1);
  assert.is(bestWithinBudget([point(0, 10, 0.9)], 'size'), undefined);
});

function report(points: ParetoPoint[], chosen: number, uniform: number): AutoOptimizeReport {
  const summary = (p: ParetoPoint): ModelSummary => ({
    point: p.id,
    settings: {},
    description: {},
    bytes: p.bytes,
    validationAccuracy: p.validationAccuracy,
    accuracyDrop: p.accuracyDrop,
    latencyUs: p.latencyUs,
    testAccuracy: p.validationAccuracy - 0.06,
  });
  for (const id of paretoFront(points, 'size')) points[id].onFront = true;
  return {
    model: 'mlp <test> & co',
    objective: 'size',
    maxAccuracyDrop: 0.5,
    target: 'cpu',
    seed: 1,
    fineTune: null,
    validationRows: 1000,
    reference: summary(points[0]),
    uniformInt8: summary(points[uniform]),
    bestUniform: summary(points[uniform]),
    chosen: summary(points[chosen]),
    gainOverUniform: points[uniform].bytes / points[chosen].bytes,
    points,
    front: paretoFront(points, 'size'),
    path: [],
    sensitivity: { model: 'm', validationRows: 1000, reference: { bytes: 1, accuracy: 0.99 }, layers: [] },
    latency: null,
    verifications: points.length,
    seconds: 1,
  };
}

const attr = (tag: string, name: string) => Number(new RegExp(`\\b${name}="([-\\d.]+)"`).exec(tag)![1]);

test('svg: markers never overlap (crowded points share one), labels never overlap, the budget line and test figures are drawn', () => {
  const r = rng(5);
  const pts = [point(0, 408_224, 0.99, { source: 'float', label: 'float32' })];
  // 40 points crowded into a narrow band, some identical, some far below the budget.
  for (let i = 1; i <= 40; i++) {
    const bytes = i % 7 === 0 ? 53_544 : Math.round(30_000 + r() * 30_000);
    const acc = i % 9 === 0 ? 0.5 + r() * 0.3 : 0.984 + Math.round(r() * 6) / 1000;
    pts.push(point(i, bytes, acc, { source: i % 3 ? 'search' : 'uniform' }));
  }
  const svg = paretoSvg(report(pts, 5, 7));
  // Well formed enough for any SVG reader: balanced text elements, escaped text.
  assert.is((svg.match(/<text/g) ?? []).length, (svg.match(/<\/text>/g) ?? []).length);
  assert.ok(svg.includes('mlp &lt;test&gt; &amp; co'));
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));

  const inPlot = (x: number, y: number) => x >= 80 && x <= 860 && y >= 60 && y <= 440;
  const markers = [
    ...[...svg.matchAll(/<circle [^>]*r="5"[^>]*\/>/g)].map((m) => [attr(m[0], 'cx'), attr(m[0], 'cy')]),
    ...[...svg.matchAll(/<rect [^>]*width="10" height="10"[^>]*\/>/g)].map((m) => [attr(m[0], 'x') + 5, attr(m[0], 'y') + 5]),
  ].filter(([x, y]) => inPlot(x, y));
  assert.ok(markers.length >= 10, `${markers.length} markers`);
  for (let i = 0; i < markers.length; i++)
    for (let j = i + 1; j < markers.length; j++)
      assert.ok(Math.hypot(markers[i][0] - markers[j][0], markers[i][1] - markers[j][1]) >= 10, `markers ${i} and ${j} overlap`);

  const labels = [...svg.matchAll(/<text x="([\d.]+)" y="([\d.]+)"[^>]*>(#[\d,#]+)<\/text>/g)].map((m) => ({
    x: Number(m[1]),
    y: Number(m[2]) - 11,
    w: m[3].length * 6.8,
    h: 14,
    text: m[3],
  }));
  assert.ok(
    labels.some((l) => l.text.split(',').includes('#5')),
    'the chosen point is labelled',
  );
  for (let i = 0; i < labels.length; i++)
    for (let j = i + 1; j < labels.length; j++) {
      const [a, b] = [labels[i], labels[j]];
      assert.not.ok(a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h, `labels ${a.text} and ${b.text} overlap`);
    }
  // Every point is somewhere: a marker of its own, a shared one, or an arrow under the axis.
  const mentioned = new Set(labels.flatMap((l) => l.text.split(',')));
  for (const p of pts.filter((q) => q.onFront || q.source !== 'search')) assert.ok(mentioned.has(`#${p.id}`), `#${p.id} is labelled`);
  assert.match(svg, /stroke="#dc2626" stroke-dasharray/);
  assert.match(svg, /budget: 0.5 points below float32 \(98.50 %\)/);
  assert.match(svg, /test split \(never seen by the search\)/);
  assert.match(svg, /below the axis/);
});

test.run();
