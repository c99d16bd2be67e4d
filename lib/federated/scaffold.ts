/**
 * SCAFFOLD (Karimireddy et al. 2020, "Stochastic Controlled Averaging"): drift
 * correction for clients whose data differ (label skew). The server keeps a
 * control variate c, one tensor per trainable tensor of the model (BatchNorm
 * running statistics have none); client i keeps its own c_i. Every local step
 * follows g_i(y) - c_i + c instead of g_i(y), so a client whose classes pull
 * the weights one way is pushed back towards the federation's direction. After
 * training, c_i becomes the mean loss gradient of the client's local steps (the
 * paper's option II for plain SGD; it needs no extra pass and no optimizer
 * algebra), the client sends Δc_i with its weight delta, and the server moves
 * c by (|S| / N) · aggregate(Δc_i) (N: known clients, S: this round's).
 *
 * On the wire, control tensors ride in the same frames as the weights under
 * CONTROL_PREFIX: the task carries c, the update Δc_i (float32, uncompressed:
 * SCAFFOLD doubles the bytes each way).
 */
import { EdgeOptError } from '../errors';
import { validateUpdate, type ClientUpdate } from './aggregate';
import { f32Tensors, type EncodedTensor } from './codec';
import type { ParamSpec, Tensors } from './params';
import { aggregate, type RobustOptions } from './robust';

export const CONTROL_PREFIX = 'scaffold:';

type Decoded = Array<{ name: string; shape: number[]; data: Float32Array }>;

/** The tensors that get a control variate: the trainable ones. */
export function controlSpecs(specs: ParamSpec[]): ParamSpec[] {
  return specs.filter((s) => !s.statistic);
}

/** c = 0 for every trainable tensor. */
export function zeroControls(specs: ParamSpec[]): Tensors {
  return Object.fromEntries(controlSpecs(specs).map((s) => [s.name, new Float32Array(s.shape.reduce((a, b) => a * b, 1))]));
}

/** Control tensors for a frame (float32, prefixed names). */
export function encodeControls(controls: Tensors, shapes: Record<string, number[]>): EncodedTensor[] {
  return f32Tensors(controls, shapes).map((t) => ({ ...t, name: CONTROL_PREFIX + t.name }));
}

/** A decoded frame's tensors split into model tensors and control tensors (prefix removed). */
export function splitControls<T extends Decoded[number]>(tensors: T[]): { params: T[]; controls: T[] } {
  const params: T[] = [];
  const controls: T[] = [];
  for (const t of tensors) {
    if (t.name.startsWith(CONTROL_PREFIX)) controls.push({ ...t, name: t.name.slice(CONTROL_PREFIX.length) });
    else params.push(t);
  }
  return { params, controls };
}

/**
 * Throws E_VALUE / E_SHAPE unless `controls` holds exactly one finite tensor per trainable tensor
 * (validateUpdate's checks, without a norm bound: the aggregate's clipping bounds Δc_i).
 */
export function validateControls(specs: ParamSpec[], controls: Decoded): Tensors {
  try {
    validateUpdate(controlSpecs(specs), controls, 1, { maxNorm: Infinity, maxSamples: 1 });
  } catch (err) {
    if (!(err instanceof EdgeOptError)) throw err;
    throw new EdgeOptError(err.code, `control tensors (${CONTROL_PREFIX}<name>; the server runs SCAFFOLD): ${err.message}`);
  }
  return Object.fromEntries(controls.map((t) => [t.name, t.data]));
}

/**
 * The server's next c: c + (|S| / N) · the aggregate of the round's Δc_i, with the same
 * influence bounds and aggregator as the weights (a poisoned Δc steers every client's steps).
 */
export function nextControls(
  c: Tensors,
  specs: ParamSpec[],
  updates: ClientUpdate[],
  knownClients: number,
  robust: RobustOptions,
): Tensors {
  const cs = controlSpecs(specs);
  const asUpdates = updates.map((u) => ({ ...u, delta: u.controlDelta! }));
  const zero = zeroControls(specs);
  const step = aggregate(zero, cs, asUpdates, robust);
  const share = updates.length / knownClients;
  return Object.fromEntries(cs.map((s) => [s.name, c[s.name].map((v, i) => v + share * step[s.name][i])]));
}

/** What a client does with the server's c: the gradient offset c - c_i and, after training, its new c_i and Δc_i. */
export class ClientControl {
  private own: Tensors | null = null;

  /** c - c_i per trainable tensor, in `names` order (the training network's parameter order). */
  offset(server: Tensors, names: string[]): Float32Array[] {
    return names.map((n) => {
      const c = server[n];
      const ci = this.own?.[n];
      return ci ? c.map((v, i) => v - ci[i]) : Float32Array.from(c);
    });
  }

  /** Stores the run's mean gradients as c_i; returns Δc_i. */
  update(meanGradient: Float32Array[], names: string[]): Tensors {
    const next: Tensors = Object.fromEntries(names.map((n, k) => [n, meanGradient[k]]));
    const delta: Tensors = Object.fromEntries(
      names.map((n) => {
        const old = this.own?.[n];
        return [n, old ? next[n].map((v, i) => v - old[i]) : Float32Array.from(next[n])];
      }),
    );
    this.own = next;
    return delta;
  }
}
