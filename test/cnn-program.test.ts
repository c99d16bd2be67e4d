/**
 * The native binding parses a Program once and checks every index, size,
 * stride and offset before anything runs: malformed Programs (hand-edited or
 * fuzzed) are EdgeOptErrors (E_FORMAT / E_SHAPE / E_DTYPE / E_ARGUMENT /
 * E_UNSUPPORTED_OP), never a crash, and a valid one computes what the TS
 * executor computes. Also: segments of a partitioned Program chain correctly.
 */
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backendInfo, nativeAddon } from '../lib/backends';
import { lowerGraph } from '../lib/engine/lower';
import type { Program } from '../lib/engine/program';
import { subProgram } from '../lib/engine/segments';
import { TsProgram } from '../lib/engine/ts-program';
import { fromNative } from '../lib/errors';
import { loadModel } from '../lib/model';
import { closeFloats, FIXTURES, readF32, rng, sameFloats } from './helpers';

const native = backendInfo().native;
const MOBILENET = path.join(FIXTURES, 'mobilenet-mini-1x28x28');
const program = lowerGraph(loadModel(path.join(MOBILENET, 'model-bn.onnx')));
const x = readF32(path.join(MOBILENET, 'input.bin')).subarray(0, 3 * 784);

/** A deep copy that keeps typed arrays (shared: nothing mutates their contents). */
function copy(p: Program): Program {
  return {
    ...p,
    tensors: p.tensors.map((t) => ({ ...t, shape: [...t.shape] })),
    ops: p.ops.map((o) => JSON.parse(JSON.stringify(o, (_k, v) => (ArrayBuffer.isView(v) ? undefined : v)))),
    inputs: p.inputs.map((i) => ({ ...i })),
    outputs: p.outputs.map((o) => ({ ...o })),
  };
}

function build(p: unknown): unknown {
  try {
    return new (nativeAddon()!.Program)(p as Program, undefined, 1);
  } catch (err) {
    return fromNative(err);
  }
}

const CODES = ['E_FORMAT', 'E_SHAPE', 'E_DTYPE', 'E_ARGUMENT', 'E_UNSUPPORTED_OP'];

test('a valid Program runs natively and agrees with the TS executor', () => {
  if (!native) return;
  const n = build(program) as { runSync(xs: Float32Array[], b: number): Float32Array[] };
  const ts = new TsProgram(program).run([x], 3)[0];
  closeFloats(n.runSync([x], 3)[0], ts, { abs: 1e-5, rel: 1e-5 }, 'native vs ts');
});

test('hand-broken Programs: each is refused with a code naming the op or tensor', () => {
  if (!native) return;
  const conv = program.ops.findIndex((o) => o.op === 'conv');
  const arenaTensor = program.tensors.findIndex((t) => t.offset !== undefined);
  const cases: Array<[string, (p: Program) => void, RegExp]> = [
    ['x index out of range', (p) => ((p.ops[conv] as { x: number }).x = 9999), /names tensor 9999/],
    ['offset past the arena', (p) => (p.tensors[arenaTensor].offset = p.arenaBytes), /does not fit/],
    ['misaligned offset', (p) => (p.tensors[arenaTensor].offset = 4), /does not fit/],
    ['conv output size wrong', (p) => ((p.ops[conv] as { outH: number }).outH += 1), /output size does not follow|holds/],
    ['negative pad', (p) => ((p.ops[conv] as { padTop: number }).padTop = -1), /padTop must be an integer/],
    ['groups that do not divide', (p) => ((p.ops[conv] as { groups: number }).groups = 5), /groups|holds/],
    ['unknown op', (p) => ((p.ops[0] as { op: string }).op = 'gelu'), /not a Program op/],
    ['unknown activation', (p) => ((p.ops[conv] as { act: { kind: string } }).act = { kind: 'swish' }), /unknown activation/],
    [
      'weight of the wrong type',
      (p) => (p.tensors[(p.ops[conv] as { weight: number }).weight].data = new Int32Array(9)),
      /must be a|data holds|dtype/,
    ],
    ['shape not an array', (p) => ((p.tensors[0] as { shape: unknown }).shape = 'big'), /shape must be an array/],
    ['no arena offset', (p) => delete p.tensors[arenaTensor].offset, /no data, alias or arena offset/],
    ['a view of a view', (p) => (p.tensors[arenaTensor].alias = p.tensors.length - 1), /view/],
    ['input index out of range', (p) => (p.inputs[0].tensor = -1), /tensor must be an integer/],
    ['huge arena', (p) => (p.arenaBytes = 2 ** 50), /arenaBytes/],
  ];
  for (const [what, edit, why] of cases) {
    const p = copy(program);
    edit(p);
    const r = build(p);
    assert.ok(r instanceof Error, `${what}: built`);
    assert.ok(CODES.includes((r as unknown as { code: string }).code), `${what}: ${String(r)}`);
    assert.match((r as Error).message, why, what);
  }
  assert.ok(build(null) instanceof Error);
  assert.ok(build({ tensors: 3, ops: [] }) instanceof Error);
});

test('fuzz: Programs with random fields changed are built or refused with an EdgeOptError, and what builds runs', () => {
  if (!native) return;
  const r = rng(4242);
  const pick = <T>(a: T[]) => a[Math.floor(r() * a.length)];
  const values = [-1, 0, 1, 2, 3, 7, 64, 1e9, 2 ** 31, 0.5, NaN, -(2 ** 40), 'x', null, [], {}];
  let built = 0;
  for (let c = 0; c < 1500; c++) {
    const p = copy(program);
    for (let m = 1 + Math.floor(r() * 3); m > 0; m--) {
      const target: Record<string, unknown> =
        r() < 0.6 ? (pick(p.ops) as unknown as Record<string, unknown>) : (pick(p.tensors) as unknown as Record<string, unknown>);
      const key = pick(Object.keys(target).filter((k) => k !== 'data'));
      target[key] = pick(values);
    }
    const n = build(p);
    if (n instanceof Error) {
      assert.ok(CODES.includes((n as unknown as { code: string }).code), `case ${c}: ${String(n)}`);
      continue;
    }
    built++;
    try {
      (n as { runSync(xs: Float32Array[], b: number): Float32Array[] }).runSync([x], 3);
    } catch (err) {
      assert.ok(CODES.includes(fromNative(err).code), `case ${c} run: ${String(err)}`);
    }
  }
  assert.ok(built > 0, 'some mutations keep a valid program');
});

test('segments: a Program cut into pieces and run piece by piece gives the same outputs', () => {
  const whole = new TsProgram(program).run([x], 3)[0];
  const cut = [0, 3, 7, program.ops.length];
  const values = new Map<number, Float32Array>([[program.inputs[0].tensor, x]]);
  for (let i = 0; i + 1 < cut.length; i++) {
    const sub = subProgram(program, cut[i], cut[i + 1]);
    assert.ok(sub.program.arenaBytes <= program.arenaBytes, 'a piece needs no more arena than the whole');
    const ys = new TsProgram(sub.program).run(
      sub.inputs.map((t) => values.get(t)!),
      3,
    );
    sub.outputs.forEach((t, j) => values.set(t, ys[j]));
  }
  sameFloats(values.get(program.tensors[program.outputs[0].tensor].alias ?? program.outputs[0].tensor)!, whole, 'segments');
});

test.run();
