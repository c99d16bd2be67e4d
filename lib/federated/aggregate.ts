/**
 * Server-side update handling: validation (names, shapes, finite values, norm
 * bound), FedAvg weighted by sample count (McMahan et al.), and optional
 * central DP: each update clipped to an L2 norm, Gaussian noise
 * (std = noiseMultiplier · clipNorm / clients) added to the average, as
 * Flower's DifferentialPrivacyServerSideFixedClipping does.
 */
import { EdgeOptError } from '../errors';
import { l2Norm } from '../train/linalg';
import { gaussian } from '../train/random';
import type { ParamSpec, Tensors } from './params';

export interface ClientUpdate {
  clientId: string;
  numSamples: number;
  delta: Tensors;
  metrics: Record<string, number>;
  /** SCAFFOLD: Δc_i, the change of the client's control variate (scaffold.ts). */
  controlDelta?: Tensors;
}

export interface DpOptions {
  clipNorm: number;
  noiseMultiplier?: number;
}

/** What one update may claim: its L2 norm and its sample count. */
export interface UpdateLimits {
  maxNorm: number;
  maxSamples: number;
}

/** Throws E_VALUE / E_SHAPE describing the first problem; returns the update's L2 norm. */
export function validateUpdate(
  specs: ParamSpec[],
  tensors: Array<{ name: string; shape: number[]; data: Float32Array }>,
  numSamples: unknown,
  limits: UpdateLimits,
): number {
  if (!(Number.isSafeInteger(numSamples) && (numSamples as number) > 0))
    throw new EdgeOptError('E_VALUE', `numSamples must be a positive integer, got ${String(numSamples)}`);
  if ((numSamples as number) > limits.maxSamples)
    throw new EdgeOptError('E_VALUE', `numSamples ${String(numSamples)} exceeds the cap of ${limits.maxSamples} per client`);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  if (byName.size !== tensors.length) throw new EdgeOptError('E_VALUE', 'a tensor appears twice');
  for (const t of tensors) if (!specs.some((s) => s.name === t.name)) throw new EdgeOptError('E_VALUE', `unknown tensor '${t.name}'`);
  for (const s of specs) {
    const t = byName.get(s.name);
    if (!t) throw new EdgeOptError('E_VALUE', `tensor '${s.name}' is missing`);
    if (t.shape.join(',') !== s.shape.join(','))
      throw new EdgeOptError('E_SHAPE', `tensor '${s.name}' has shape [${t.shape}], the model has [${s.shape}]`);
    const bad = t.data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new EdgeOptError('E_VALUE', `tensor '${s.name}' has a non-finite value (${t.data[bad]}) at ${bad}`);
  }
  const norm = l2Norm(tensors.map((t) => t.data));
  if (!(norm <= limits.maxNorm))
    throw new EdgeOptError('E_VALUE', `update norm ${norm.toPrecision(4)} exceeds the bound ${limits.maxNorm.toPrecision(4)}`);
  return norm;
}

/** Names a client may not use as metric keys: they reach Object.prototype through plain objects. */
const RESERVED = new Set(['__proto__', 'constructor', 'prototype']);
const METRIC_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;
const MAX_METRICS = 32;

/**
 * A client's metrics, checked: at most 32 names of [A-Za-z0-9_.:-]{1,64}, never a
 * reserved one (E_VALUE), each a finite number or null (JSON's NaN, dropped).
 * Returned as a Map, so no client-chosen key is ever a property of anything.
 */
export function validateMetrics(metrics: unknown): Map<string, number> {
  const out = new Map<string, number>();
  if (metrics === undefined || metrics === null) return out;
  if (typeof metrics !== 'object' || Array.isArray(metrics)) throw new EdgeOptError('E_VALUE', 'metrics must be an object of numbers');
  const entries = Object.entries(metrics);
  if (entries.length > MAX_METRICS) throw new EdgeOptError('E_VALUE', `${entries.length} metrics; at most ${MAX_METRICS} are accepted`);
  for (const [name, value] of entries) {
    if (RESERVED.has(name) || !METRIC_NAME.test(name))
      throw new EdgeOptError('E_VALUE', `metric name ${JSON.stringify(name.slice(0, 80))} is reserved or not [A-Za-z0-9_.:-]{1,64}`);
    if (value === null) continue;
    if (typeof value !== 'number' || !Number.isFinite(value))
      throw new EdgeOptError('E_VALUE', `metric '${name}' must be a finite number, got ${JSON.stringify(value)}`);
    out.set(name, value);
  }
  return out;
}

/**
 * global + Σ n_k·Δ_k / Σ n_k (each Δ_k clipped first when dp is set), then noise;
 * masked entries stay zero. Returns new arrays; `global` is not modified.
 */
export function fedAvg(global: Tensors, specs: ParamSpec[], updates: ClientUpdate[], dp?: DpOptions, random?: () => number): Tensors {
  if (!updates.length) throw new EdgeOptError('E_STATE', 'FedAvg needs at least one update');
  const total = updates.reduce((s, u) => s + u.numSamples, 0);
  const next: Tensors = {};
  const scales = updates.map((u) => {
    const norm = dp ? l2Norm(Object.values(u.delta)) : 0;
    const clip = dp && norm > dp.clipNorm ? dp.clipNorm / norm : 1;
    return (clip * u.numSamples) / total;
  });
  const noise = dp?.noiseMultiplier && random ? gaussian(random) : null;
  const std = dp?.noiseMultiplier ? (dp.noiseMultiplier * dp.clipNorm) / updates.length : 0;
  for (const s of specs) {
    const acc = new Float64Array(global[s.name].length);
    updates.forEach((u, k) => {
      const d = u.delta[s.name];
      for (let i = 0; i < acc.length; i++) acc[i] += scales[k] * d[i];
    });
    next[s.name] = Float32Array.from(global[s.name], (w, i) => {
      if (s.mask && !s.mask[i]) return 0;
      return w + acc[i] + (noise ? std * noise() : 0);
    });
  }
  return next;
}

/**
 * Sample-weighted mean of each metric the updates report. Keyed by a Map (a
 * client's '__proto__' is just a name here); the result is built with
 * Object.fromEntries, which defines own properties and never calls a setter.
 */
export function averageMetrics(updates: ClientUpdate[]): Record<string, number> {
  const sums = new Map<string, { s: number; n: number }>();
  for (const u of updates) {
    for (const [k, v] of Object.entries(u.metrics)) {
      if (typeof v !== 'number' || !Number.isFinite(v) || RESERVED.has(k)) continue;
      let e = sums.get(k);
      if (!e) sums.set(k, (e = { s: 0, n: 0 }));
      e.s += v * u.numSamples;
      e.n += u.numSamples;
    }
  }
  return Object.fromEntries([...sums].map(([k, e]) => [k, e.s / e.n]));
}
