/**
 * Pooling forward and backward, NCHW: MaxPool routes each output's gradient to the input it took
 * (first maximum on ties, as PyTorch), AveragePool spreads it over its window (padding counted or
 * not, per countIncludePad), GlobalAveragePool over the whole plane.
 */
import type { GraphNode } from '../../model/graph';
import { windowAttrs, windowGeometry, type ValueShape, type WindowGeometry } from '../../model/shapes';
import { stateless, type TrainOp } from './op';

export function globalAveragePoolOp(node: GraphNode, x: ValueShape): TrainOp {
  const [c] = x.dims;
  const per = x.dims.slice(1).reduce((a, b) => a * b, 1);
  return {
    ...stateless(node),
    forward([xv], n) {
      const y = new Float32Array(n * c);
      for (let i = 0; i < n * c; i++) {
        let s = 0;
        for (let j = i * per; j < (i + 1) * per; j++) s += xv[j];
        y[i] = s / per;
      }
      return { y };
    },
    backward(gy, _x, _f, n) {
      const dx = new Float32Array(n * c * per);
      for (let i = 0; i < n * c; i++) dx.fill(gy[i] / per, i * per, (i + 1) * per);
      return [dx];
    },
  };
}

/** Visits each output position's window: `visit(out, inputs)` with the in-bounds input offsets of the plane. */
export function poolOp(node: GraphNode, x: ValueShape): TrainOp {
  const [c, h, w] = x.dims;
  const [kh, kw] = node.attrs.kernelShape as number[];
  const wa = windowAttrs(node, kh, kw);
  const geo = windowGeometry(h, w, wa) as WindowGeometry;
  const [oh, ow] = [geo.outH, geo.outW];
  const max = node.op === 'MaxPool';
  const includePad = node.attrs.countIncludePad === true;
  // Window taps per output position, and the divisor of an average.
  const taps: number[][] = [];
  const divisor: number[] = [];
  for (let oy = 0; oy < oh; oy++)
    for (let ox = 0; ox < ow; ox++) {
      const t: number[] = [];
      let padded = 0;
      for (let ky = 0; ky < kh; ky++)
        for (let kx = 0; kx < kw; kx++) {
          const iy = oy * wa.strides[0] - geo.padTop + ky * wa.dilations[0];
          const ix = ox * wa.strides[1] - geo.padLeft + kx * wa.dilations[1];
          if (iy >= 0 && iy < h && ix >= 0 && ix < w) t.push(iy * w + ix);
          else if (iy < h + geo.padBottom && ix < w + geo.padRight) padded++;
        }
      taps.push(t);
      divisor.push(includePad ? t.length + padded : t.length);
    }
  const planes = (n: number) => n * c;
  return {
    ...stateless(node),
    forward([xv], n) {
      const y = new Float32Array(planes(n) * oh * ow);
      const arg = max ? new Int32Array(y.length) : undefined;
      for (let p = 0; p < planes(n); p++) {
        const base = p * h * w;
        taps.forEach((t, o) => {
          const yi = p * oh * ow + o;
          if (max) {
            let best = t[0];
            for (const i of t) if (xv[base + i] > xv[base + best]) best = i;
            y[yi] = xv[base + best];
            arg![yi] = base + best;
          } else {
            let s = 0;
            for (const i of t) s += xv[base + i];
            y[yi] = s / divisor[o];
          }
        });
      }
      return { y, saved: arg };
    },
    backward(gy, _x, f, n) {
      const dx = new Float32Array(planes(n) * h * w);
      const arg = f.saved as Int32Array | undefined;
      if (arg) for (let i = 0; i < gy.length; i++) dx[arg[i]] += gy[i];
      else
        for (let p = 0; p < planes(n); p++)
          taps.forEach((t, o) => {
            const g = gy[p * oh * ow + o] / divisor[o];
            for (const i of t) dx[p * h * w + i] += g;
          });
      return [dx];
    },
  };
}
