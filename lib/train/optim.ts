/**
 * Optimizers with PyTorch's update rules (torch.optim.SGD and Adam), applied
 * in place to a list of parameters. `lr` may be changed between steps (schedules).
 */
import { EdgeOptError } from '../errors';
import type { Param } from './network';

export interface Optimizer {
  lr: number;
  step(params: Param[], grads: Float32Array[]): void;
}

export interface SgdOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
}

export interface AdamOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

function checkLr(lr: number, who: string): void {
  if (!(typeof lr === 'number' && lr > 0 && Number.isFinite(lr)))
    throw new EdgeOptError('E_ARGUMENT', `${who}: lr must be a positive number, got ${String(lr)}`);
}

/** buf = momentum·buf + (g + wd·w); w -= lr·buf. */
export function sgd(options: SgdOptions): Optimizer {
  checkLr(options.lr, 'sgd');
  const momentum = options.momentum ?? 0;
  const wd = options.weightDecay ?? 0;
  const bufs: Float32Array[] = [];
  return {
    lr: options.lr,
    step(params, grads) {
      params.forEach((p, k) => {
        const g = grads[k];
        const w = p.data;
        const buf = (bufs[k] ??= new Float32Array(w.length));
        for (let i = 0; i < w.length; i++) {
          const d = g[i] + wd * w[i];
          buf[i] = momentum ? momentum * buf[i] + d : d;
          w[i] -= this.lr * buf[i];
        }
      });
    },
  };
}

/** Adam with bias correction (Kingma & Ba), L2 weight decay added to the gradient. */
export function adam(options: AdamOptions): Optimizer {
  checkLr(options.lr, 'adam');
  const b1 = options.beta1 ?? 0.9;
  const b2 = options.beta2 ?? 0.999;
  const eps = options.eps ?? 1e-8;
  const wd = options.weightDecay ?? 0;
  const m: Float32Array[] = [];
  const v: Float32Array[] = [];
  let t = 0;
  return {
    lr: options.lr,
    step(params, grads) {
      t++;
      const c1 = 1 - b1 ** t;
      const c2 = 1 - b2 ** t;
      params.forEach((p, k) => {
        const g = grads[k];
        const w = p.data;
        const mk = (m[k] ??= new Float32Array(w.length));
        const vk = (v[k] ??= new Float32Array(w.length));
        for (let i = 0; i < w.length; i++) {
          const d = g[i] + wd * w[i];
          mk[i] = b1 * mk[i] + (1 - b1) * d;
          vk[i] = b2 * vk[i] + (1 - b2) * d * d;
          w[i] -= (this.lr * (mk[i] / c1)) / (Math.sqrt(vk[i] / c2) + eps);
        }
      });
    },
  };
}
