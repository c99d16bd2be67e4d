/**
 * BatchNormalization as PyTorch trains it: in training, each channel is normalized with the batch
 * mean and biased variance over (N, H, W), and the running statistics move by momentum 0.1 toward the
 * batch mean and unbiased variance; outside training the running statistics are used. The scale and
 * bias are trained; the running statistics are buffers written back into the graph, where lowering
 * folds them into the convolution before as for any imported model.
 */
import type { Graph, GraphNode } from '../../model/graph';
import type { ValueShape } from '../../model/shapes';
import { paramOf, type TrainOp } from './op';

const MOMENTUM = 0.1;

interface Saved {
  xhat: Float32Array;
  invStd: Float64Array;
  training: boolean;
}

export function batchNormOp(g: Graph, node: GraphNode, x: ValueShape): TrainOp {
  const [scale, bias, mean, variance] = node.inputs.slice(1).map((name) => {
    const t = g.tensors[name];
    return paramOf(t.name, t.shape, t.data as Float32Array);
  });
  const eps = (node.attrs.epsilon as number | undefined) ?? 1e-5;
  const c = x.dims[0];
  const per = x.dims.slice(1).reduce((a, b) => a * b, 1);
  return {
    node,
    inputs: [node.inputs[0]],
    params: [scale, bias],
    buffers: [mean, variance],
    forward([xv], n, ctx) {
      const y = new Float32Array(xv.length);
      const xhat = new Float32Array(xv.length);
      const invStd = new Float64Array(c);
      const count = n * per;
      for (let ch = 0; ch < c; ch++) {
        let mu = mean.data[ch];
        let v = variance.data[ch];
        if (ctx.training) {
          let s = 0;
          for (let b = 0; b < n; b++) for (let i = (b * c + ch) * per, e = i + per; i < e; i++) s += xv[i];
          mu = s / count;
          let ss = 0;
          for (let b = 0; b < n; b++)
            for (let i = (b * c + ch) * per, e = i + per; i < e; i++) {
              const d = xv[i] - mu;
              ss += d * d;
            }
          v = ss / count;
          mean.data[ch] = (1 - MOMENTUM) * mean.data[ch] + MOMENTUM * mu;
          variance.data[ch] = (1 - MOMENTUM) * variance.data[ch] + MOMENTUM * (count > 1 ? ss / (count - 1) : v);
        }
        const inv = 1 / Math.sqrt(v + eps);
        invStd[ch] = inv;
        const [gm, bt] = [scale.data[ch], bias.data[ch]];
        for (let b = 0; b < n; b++)
          for (let i = (b * c + ch) * per, e = i + per; i < e; i++) {
            const h = (xv[i] - mu) * inv;
            xhat[i] = h;
            y[i] = gm * h + bt;
          }
      }
      return { y, saved: { xhat, invStd, training: ctx.training } satisfies Saved };
    },
    backward(gy, _xs, f, n, [dScale, dBias]) {
      const { xhat, invStd, training } = f.saved as Saved;
      const dx = new Float32Array(gy.length);
      const count = n * per;
      for (let ch = 0; ch < c; ch++) {
        let sg = 0;
        let sgx = 0;
        for (let b = 0; b < n; b++)
          for (let i = (b * c + ch) * per, e = i + per; i < e; i++) {
            sg += gy[i];
            sgx += gy[i] * xhat[i];
          }
        dScale[ch] += sgx;
        dBias[ch] += sg;
        const k = scale.data[ch] * invStd[ch];
        // Training: the batch statistics depend on x too (the usual two correction terms).
        const [mg, mgx] = training ? [sg / count, sgx / count] : [0, 0];
        for (let b = 0; b < n; b++) for (let i = (b * c + ch) * per, e = i + per; i < e; i++) dx[i] = k * (gy[i] - mg - xhat[i] * mgx);
      }
      return [dx];
    },
  };
}
