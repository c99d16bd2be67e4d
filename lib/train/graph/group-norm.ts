/**
 * GroupNormalization (Wu & He 2018; ONNX opset 21): each image's channels are split into
 * `numGroups` contiguous groups, each group normalized with its own mean and biased variance
 * over (channels of the group, H, W), then scaled and shifted per channel. Training and
 * inference compute the same thing (no running statistics), which is why it survives label
 * skew in federated learning where BatchNormalization does not (Hsieh et al. 2020).
 */
import type { Graph, GraphNode } from '../../model/graph';
import type { ValueShape } from '../../model/shapes';
import { paramOf, type TrainOp } from './op';

interface Saved {
  xhat: Float32Array;
  /** Per (image, group). */
  invStd: Float64Array;
}

export function groupNormOp(g: Graph, node: GraphNode, x: ValueShape): TrainOp {
  const [scale, bias] = node.inputs.slice(1).map((name) => {
    const t = g.tensors[name];
    return paramOf(t.name, t.shape, t.data as Float32Array);
  });
  const eps = (node.attrs.epsilon as number | undefined) ?? 1e-5;
  const groups = node.attrs.numGroups as number;
  const c = x.dims[0];
  const per = x.dims.slice(1).reduce((a, b) => a * b, 1);
  const cpg = c / groups;
  // A group is contiguous in NCHW: channels [k * cpg, (k + 1) * cpg) of one image.
  const size = cpg * per;
  return {
    node,
    inputs: [node.inputs[0]],
    params: [scale, bias],
    buffers: [],
    forward([xv], n) {
      const y = new Float32Array(xv.length);
      const xhat = new Float32Array(xv.length);
      const invStd = new Float64Array(n * groups);
      for (let bg = 0; bg < n * groups; bg++) {
        const start = bg * size;
        let s = 0;
        for (let i = start; i < start + size; i++) s += xv[i];
        const mu = s / size;
        let ss = 0;
        for (let i = start; i < start + size; i++) ss += (xv[i] - mu) * (xv[i] - mu);
        const inv = 1 / Math.sqrt(ss / size + eps);
        invStd[bg] = inv;
        const firstChannel = (bg % groups) * cpg;
        for (let j = 0; j < cpg; j++) {
          const [gm, bt] = [scale.data[firstChannel + j], bias.data[firstChannel + j]];
          for (let i = start + j * per, e = i + per; i < e; i++) {
            const h = (xv[i] - mu) * inv;
            xhat[i] = h;
            y[i] = gm * h + bt;
          }
        }
      }
      return { y, saved: { xhat, invStd } satisfies Saved };
    },
    backward(gy, _xs, f, n, [dScale, dBias]) {
      const { xhat, invStd } = f.saved as Saved;
      const dx = new Float32Array(gy.length);
      for (let bg = 0; bg < n * groups; bg++) {
        const start = bg * size;
        const firstChannel = (bg % groups) * cpg;
        // With d = gy * scale (the gradient of xhat): dx = invStd * (d - mean(d) - xhat * mean(d * xhat)).
        let sd = 0;
        let sdx = 0;
        for (let j = 0; j < cpg; j++) {
          const gm = scale.data[firstChannel + j];
          let sg = 0;
          let sgx = 0;
          for (let i = start + j * per, e = i + per; i < e; i++) {
            sg += gy[i];
            sgx += gy[i] * xhat[i];
          }
          dScale[firstChannel + j] += sgx;
          dBias[firstChannel + j] += sg;
          sd += gm * sg;
          sdx += gm * sgx;
        }
        const [md, mdx, inv] = [sd / size, sdx / size, invStd[bg]];
        for (let j = 0; j < cpg; j++) {
          const gm = scale.data[firstChannel + j];
          for (let i = start + j * per, e = i + per; i < e; i++) dx[i] = inv * (gm * gy[i] - md - xhat[i] * mdx);
        }
      }
      return [dx];
    },
  };
}
