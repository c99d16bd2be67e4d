/**
 * Filter pruning (structured, Li et al. 2017 "Pruning Filters for Efficient ConvNets"): whole output
 * channels of Conv (and units of Dense) with the smallest L1 or L2 norm are removed, together with
 * every slice that reads or carries them, so the model is physically smaller and faster.
 *
 * Channels are tracked as *channel spaces*: a Conv/Dense output starts one; BatchNormalization,
 * activations, pooling, Flatten and a depthwise Conv carry it unchanged; a residual Add/Mul of two
 * activations ties both operands' spaces into one (union-find). A space is pruned as a whole, the
 * same channels everywhere, ranked by the summed norms of all its producers' filters — or it is left
 * alone when anything reads it that cannot be sliced by channel (Concat, Reshape, Softmax, a grouped
 * conv, a model output, the model input).
 */
import { kernels } from '../backends';
import { EdgeOptError } from '../errors';
import type { Graph, GraphNode, Tensor } from '../model/graph';
import { ACTIVATION_OPS, BINARY_OPS } from '../model/op-schema';
import { inferShapes } from '../model/shapes';
import { prunedCount } from './pruned-count';

export type FilterNorm = 'l1' | 'l2';

/** What one node does with a channel space: the slices to cut when channels go. */
type Role =
  | { kind: 'produce'; node: GraphNode } // Conv/Dense output rows (weight axis 0, bias)
  | { kind: 'depthwise'; node: GraphNode } // weight rows, bias and `group`
  | { kind: 'batchNorm'; node: GraphNode } // the four per-channel parameters
  | { kind: 'convInput'; node: GraphNode } // weight axis 1
  | { kind: 'denseInput'; node: GraphNode; block: number }; // weight column blocks

/** A tensor's channels: its space and how many consecutive values per image each channel holds. */
interface Channels {
  space: number;
  block: number;
}

/** Ops whose output carries its input's channels unchanged (element-wise, pooling). */
const CARRIERS = new Set<string>([
  ...ACTIVATION_OPS,
  'Identity',
  'Dropout',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'GlobalMaxPool',
]);
const TIES = new Set<string>(BINARY_OPS);

class ChannelSpaces {
  private readonly parent: number[] = [];
  readonly size: number[] = [];
  readonly fixed: boolean[] = [];
  readonly roles: Role[][] = [];

  create(size: number): number {
    const id = this.parent.length;
    this.parent.push(id);
    this.size.push(size);
    this.fixed.push(false);
    this.roles.push([]);
    return id;
  }

  find(s: number): number {
    while (this.parent[s] !== s) s = this.parent[s] = this.parent[this.parent[s]];
    return s;
  }

  union(a: number, b: number): number {
    const [ra, rb] = [this.find(a), this.find(b)];
    if (ra === rb) return ra;
    this.parent[rb] = ra;
    this.fixed[ra] ||= this.fixed[rb];
    this.roles[ra].push(...this.roles[rb]);
    return ra;
  }

  fix(s: number): void {
    this.fixed[this.find(s)] = true;
  }

  add(s: number, role: Role): void {
    this.roles[this.find(s)].push(role);
  }
}

const product = (d: readonly number[]) => d.reduce((a, b) => a * b, 1);

/** Walks the graph once and assigns every activation its channel space. */
function traceSpaces(g: Graph): ChannelSpaces {
  const shapes = inferShapes(g);
  const spaces = new ChannelSpaces();
  const of = new Map<string, Channels>();
  const perImage = (name: string) => shapes.get(name)!;
  for (const input of g.inputs) {
    const s = perImage(input.name);
    const space = spaces.create(s.dims[0]);
    spaces.fix(space); // the caller's data keeps its channels
    of.set(input.name, { space, block: product(s.dims.slice(1)) });
  }
  const imageBlock = (name: string) => {
    const s = perImage(name);
    return s.folded ? 0 : product(s.dims.slice(1));
  };
  for (const node of g.nodes) {
    const inputs = node.inputs.map((name) => of.get(name));
    const handled = new Set<number>();
    const out = node.outputs[0];
    if (node.op === 'Conv') {
      const w = g.tensors[node.inputs[1]];
      const [outC, inPerGroup] = w.shape as number[];
      const group = (node.attrs.group as number | undefined) ?? 1;
      const x = inputs[0];
      const block = imageBlock(out);
      if (group > 1 && group === outC && inPerGroup === 1 && x && spaces.size[spaces.find(x.space)] === outC) {
        spaces.add(x.space, { kind: 'depthwise', node });
        of.set(out, { space: x.space, block });
        handled.add(0);
      } else {
        if (x && group === 1) {
          spaces.add(x.space, { kind: 'convInput', node });
          handled.add(0);
        }
        const space = spaces.create(outC);
        if (group === 1) spaces.add(space, { kind: 'produce', node });
        else spaces.fix(space);
        of.set(out, { space, block });
      }
    } else if (node.op === 'Dense') {
      const [units, k] = g.tensors[node.inputs[1]].shape as number[];
      const x = inputs[0];
      const s = perImage(node.inputs[0]);
      if (x && !s.folded && product(s.dims) === k && x.block > 0 && spaces.size[spaces.find(x.space)] * x.block === k) {
        spaces.add(x.space, { kind: 'denseInput', node, block: x.block });
        handled.add(0);
      }
      const space = spaces.create(units);
      const y = perImage(out);
      if (!y.folded && y.dims.length === 1) spaces.add(space, { kind: 'produce', node });
      else spaces.fix(space);
      of.set(out, { space, block: 1 });
    } else if (node.op === 'BatchNormalization' && inputs[0]) {
      spaces.add(inputs[0].space, { kind: 'batchNorm', node });
      of.set(out, { space: inputs[0].space, block: imageBlock(out) });
      handled.add(0);
    } else if ((CARRIERS.has(node.op) || (node.op === 'Flatten' && node.attrs.axis === 1)) && inputs[0]) {
      if (!perImage(out).folded) {
        of.set(out, { space: inputs[0].space, block: node.op === 'Flatten' ? inputs[0].block : imageBlock(out) });
        handled.add(0);
      }
    } else if (TIES.has(node.op) && inputs[0] && inputs[1] && !perImage(out).folded) {
      const [a, b] = [perImage(node.inputs[0]), perImage(node.inputs[1])];
      if (a.dims.length === b.dims.length && a.dims[0] === b.dims[0]) {
        of.set(out, { space: spaces.union(inputs[0].space, inputs[1].space), block: imageBlock(out) });
        handled.add(0).add(1);
      }
    } else if (TIES.has(node.op) && (inputs[0] ?? inputs[1])) {
      // activation op scalar constant: channels pass through untouched
      const i = inputs[0] ? 0 : 1;
      const c = g.tensors[node.inputs[1 - i]];
      if (c?.data && c.data.length === 1 && !perImage(out).folded) {
        of.set(out, { space: inputs[i]!.space, block: imageBlock(out) });
        handled.add(i);
      }
    }
    inputs.forEach((x, i) => {
      if (x && !handled.has(i)) spaces.fix(x.space);
    });
  }
  for (const name of g.outputs) {
    const x = of.get(name);
    if (x) spaces.fix(x.space);
  }
  return spaces;
}

/** Norm of every output row of a [rows, ...] weight. */
function rowNorms(w: Tensor, norm: FilterNorm): Float64Array {
  const data = w.data as Float32Array;
  const rows = w.shape[0] as number;
  const per = data.length / rows;
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let i = r * per; i < (r + 1) * per; i++) s += norm === 'l1' ? Math.abs(data[i]) : data[i] * data[i];
    out[r] = norm === 'l1' ? s : Math.sqrt(s);
  }
  return out;
}

/** Keeps `kept` indices along `axis` of a tensor (data and mask). */
function sliceAxis(t: Tensor, axis: number, kept: readonly number[], block = 1): Tensor {
  const shape = t.shape as number[];
  const outer = product(shape.slice(0, axis));
  const inner = product(shape.slice(axis + 1)) * block;
  const along = shape[axis] / block;
  const pick = <A extends Float32Array | Uint8Array>(src: A, dst: A) => {
    for (let o = 0; o < outer; o++)
      kept.forEach((c, j) => dst.set(src.subarray((o * along + c) * inner, (o * along + c + 1) * inner), (o * kept.length + j) * inner));
    return dst;
  };
  const newShape = shape.map((d, i) => (i === axis ? kept.length * block : d));
  const n = outer * kept.length * inner;
  return {
    ...t,
    shape: newShape,
    data: pick(t.data as Float32Array, new Float32Array(n)),
    ...(t.mask ? { mask: pick(t.mask, new Uint8Array(n)) } : {}),
  };
}

/** The kept channels of each filter-pruned graph pruneGraph returned (see pruneFilters), until it is collected. */
const keptByGraph = new WeakMap<Graph, ReadonlyMap<string, readonly number[]>>();

export function rememberKeptChannels(g: Graph, kept: ReadonlyMap<string, readonly number[]>): Graph {
  keptByGraph.set(g, kept);
  return g;
}

/** For a graph filter pruning returned: tensor name -> the unpruned channel behind each of its channels. */
export function keptChannelsOf(g: Graph): ReadonlyMap<string, readonly number[]> | undefined {
  return keptByGraph.get(g);
}

export interface FilterPruneOptions {
  sparsity: number;
  norm: FilterNorm;
  /** Prune only spaces all of whose producing layers are listed. */
  layers?: readonly string[];
}

/**
 * The channel spaces filter pruning may cut, each as the names of the nodes producing it
 * (one Conv, or the Convs a residual Add ties together), in graph order.
 */
export function filterSpaces(g: Graph): string[][] {
  const spaces = traceSpaces(g);
  const out: string[][] = [];
  const seen = new Set<number>();
  for (let s = 0; s < spaces.size.length; s++) {
    const root = spaces.find(s);
    if (seen.has(root)) continue;
    seen.add(root);
    const producers = spaces.roles[root].filter((r) => r.kind === 'produce').map((r) => r.node.name);
    if (!spaces.fixed[root] && producers.length && spaces.size[root] > 1) out.push(producers);
  }
  return out;
}

/**
 * Prunes `g` in place (the caller passes a clone). Returns how many channels went and, for each
 * tensor a pruned layer writes, the channels of the unpruned tensor it kept (fine-tuning maps
 * per-channel statistics through them).
 */
export function pruneFilters(g: Graph, o: FilterPruneOptions): { removed: number; kept: Map<string, number[]> } {
  if (o.norm !== 'l1' && o.norm !== 'l2') throw new EdgeOptError('E_ARGUMENT', `prune: norm must be 'l1' or 'l2', got '${String(o.norm)}'`);
  const spaces = traceSpaces(g);
  const only = o.layers ? new Set(o.layers) : undefined;
  let removed = 0;
  const keptChannels = new Map<string, number[]>();
  const done = new Set<number>();
  for (let s = 0; s < spaces.size.length; s++) {
    const root = spaces.find(s);
    if (done.has(root)) continue;
    done.add(root);
    const roles = spaces.roles[root];
    const producers = roles.filter((r) => r.kind === 'produce');
    if (spaces.fixed[root] || !producers.length) continue;
    if (only && producers.some((r) => !only.has(r.node.name))) continue;
    const size = spaces.size[root];
    const drop = prunedCount(size, o.sparsity);
    if (drop === 0) continue;
    if (drop >= size) throw new EdgeOptError('E_ARGUMENT', `prune: removing ${drop} of ${size} channels leaves none`);
    const importance = new Float32Array(size);
    for (const p of producers) rowNorms(g.tensors[p.node.inputs[1]], o.norm).forEach((v, c) => (importance[c] += v));
    const { keep } = kernels().pruneMask(importance, drop);
    const kept = [...keep.keys()].filter((c) => keep[c]);
    for (const role of roles) {
      applyRole(g, role, kept);
      if (role.kind !== 'convInput' && role.kind !== 'denseInput') keptChannels.set(role.node.outputs[0], kept);
    }
    removed += drop;
  }
  return { removed, kept: keptChannels };
}

function applyRole(g: Graph, role: Role, kept: readonly number[]): void {
  const cut = (name: string | undefined, axis: number, block = 1) => {
    if (name) g.tensors[name] = sliceAxis(g.tensors[name], axis, kept, block);
  };
  const { node } = role;
  switch (role.kind) {
    case 'produce':
    case 'depthwise':
      cut(node.inputs[1], 0);
      cut(node.inputs[2], 0);
      if (role.kind === 'depthwise') node.attrs.group = kept.length;
      break;
    case 'batchNorm':
      for (const name of node.inputs.slice(1)) cut(name, 0);
      break;
    case 'convInput':
      cut(node.inputs[1], 1);
      break;
    case 'denseInput':
      cut(node.inputs[1], 1, role.block);
      break;
  }
}
