/**
 * Convolution (groups, depthwise, stride, padding, dilation) forward and backward, NCHW.
 * Dense convolutions go through the GEMM of the kernel table (native when the addon loads):
 * patches are gathered into rows (im2col) so that Y = patches · Wᵀ, dW = dYᵀ · patches and
 * dPatches = dY · W are three GEMMs; dX scatters dPatches back (col2im). A depthwise conv
 * (one input channel per group) is a short direct loop instead: its GEMMs would be one column wide.
 */
import { kernels } from '../../backends';
import type { Graph, GraphNode } from '../../model/graph';
import { windowAttrs, windowGeometry, type ValueShape, type WindowGeometry } from '../../model/shapes';
import { transpose } from '../linalg';
import { paramOf, type TrainOp } from './op';

interface ConvGeometry {
  c: number;
  h: number;
  w: number;
  outC: number;
  oh: number;
  ow: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  pt: number;
  pl: number;
  group: number;
}

function geometryOf(g: Graph, node: GraphNode, x: ValueShape): ConvGeometry {
  const [c, h, w] = x.dims;
  const [outC, , kh, kw] = g.tensors[node.inputs[1]].shape as number[];
  const wa = windowAttrs(node, kh, kw);
  const geo = windowGeometry(h, w, wa) as WindowGeometry;
  return {
    c,
    h,
    w,
    outC,
    oh: geo.outH,
    ow: geo.outW,
    kh,
    kw,
    sh: wa.strides[0],
    sw: wa.strides[1],
    dh: wa.dilations[0],
    dw: wa.dilations[1],
    pt: geo.padTop,
    pl: geo.padLeft,
    group: (node.attrs.group as number | undefined) ?? 1,
  };
}

/**
 * im2col (`scatter` false) or col2im (`scatter` true) of group `grp`: the [n * P, K] patch matrix
 * `cols` against the NCHW input `x`; taps in the padding are zero and receive nothing. One loop
 * nest for both directions, the branch hoisted out of the innermost loop.
 */
function patches(q: ConvGeometry, n: number, grp: number, x: Float32Array, cols: Float32Array, scatter: boolean): void {
  const cg = q.c / q.group;
  const k = cg * q.kh * q.kw;
  const p = q.oh * q.ow;
  for (let b = 0; b < n; b++) {
    for (let ci = 0; ci < cg; ci++) {
      const plane = (b * q.c + grp * cg + ci) * q.h * q.w;
      for (let ky = 0; ky < q.kh; ky++) {
        for (let kx = 0; kx < q.kw; kx++) {
          const col = (ci * q.kh + ky) * q.kw + kx;
          // Output columns whose tap falls inside the image: ox in [lo, hi).
          const x0 = kx * q.dw - q.pl;
          const lo = Math.max(0, Math.ceil(-x0 / q.sw));
          const hi = Math.min(q.ow, Math.floor((q.w - 1 - x0) / q.sw) + 1);
          for (let oy = 0; oy < q.oh; oy++) {
            const iy = oy * q.sh - q.pt + ky * q.dh;
            if (iy < 0 || iy >= q.h) continue;
            let r = (b * p + oy * q.ow + lo) * k + col;
            let xi = plane + iy * q.w + x0 + lo * q.sw;
            if (scatter) for (let ox = lo; ox < hi; ox++, r += k, xi += q.sw) x[xi] += cols[r];
            else for (let ox = lo; ox < hi; ox++, r += k, xi += q.sw) cols[r] = x[xi];
          }
        }
      }
    }
  }
}

function im2col(q: ConvGeometry, x: Float32Array, n: number, grp: number): Float32Array {
  const cols = new Float32Array(n * q.oh * q.ow * (q.c / q.group) * q.kh * q.kw);
  patches(q, n, grp, x, cols, false);
  return cols;
}

function col2im(q: ConvGeometry, cols: Float32Array, n: number, grp: number, dx: Float32Array): void {
  patches(q, n, grp, dx, cols, true);
}

/**
 * Depthwise convolution (one input channel per group, `outC / c` outputs each), direct: forward adds
 * w·x into y; backward (`gy` given) adds gy·x into dw and gy·w into dx. One loop nest for both, the
 * in-image column range [lo, hi) hoisted out of the innermost loop.
 */
function depthwise(
  q: ConvGeometry,
  n: number,
  x: Float32Array,
  w: Float32Array,
  y: Float32Array,
  back?: { gy: Float32Array; dw: Float32Array; dx: Float32Array },
): void {
  const m = q.outC / q.c;
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < q.outC; o++) {
      const plane = (b * q.c + Math.floor(o / m)) * q.h * q.w;
      const out = (b * q.outC + o) * q.oh * q.ow;
      for (let ky = 0; ky < q.kh; ky++) {
        for (let kx = 0; kx < q.kw; kx++) {
          const wi = (o * q.kh + ky) * q.kw + kx;
          const wv = w[wi];
          const x0 = kx * q.dw - q.pl;
          const lo = Math.max(0, Math.ceil(-x0 / q.sw));
          const hi = Math.min(q.ow, Math.floor((q.w - 1 - x0) / q.sw) + 1);
          let acc = 0;
          for (let oy = 0; oy < q.oh; oy++) {
            const iy = oy * q.sh - q.pt + ky * q.dh;
            if (iy < 0 || iy >= q.h) continue;
            const xr = plane + iy * q.w + x0;
            const yr = out + oy * q.ow;
            if (!back) for (let ox = lo; ox < hi; ox++) y[yr + ox] += wv * x[xr + ox * q.sw];
            else
              for (let ox = lo; ox < hi; ox++) {
                const g = back.gy[yr + ox];
                const xi = xr + ox * q.sw;
                acc += g * x[xi];
                back.dx[xi] += g * wv;
              }
          }
          if (back) back.dw[wi] += acc;
        }
      }
    }
  }
}

/** Rows [n * P, outC/group] of group grp's outputs, gathered from NCHW (or scattered back with `into`). */
function groupRows(q: ConvGeometry, t: Float32Array, n: number, grp: number): Float32Array {
  const og = q.outC / q.group;
  const p = q.oh * q.ow;
  const rows = new Float32Array(n * p * og);
  for (let b = 0; b < n; b++)
    for (let o = 0; o < og; o++) {
      const src = (b * q.outC + grp * og + o) * p;
      for (let i = 0; i < p; i++) rows[(b * p + i) * og + o] = t[src + i];
    }
  return rows;
}

export function convOp(g: Graph, node: GraphNode, x: ValueShape): TrainOp {
  const q = geometryOf(g, node, x);
  const wt = g.tensors[node.inputs[1]];
  const weight = paramOf(wt.name, wt.shape, wt.data as Float32Array, wt.mask);
  const bt = node.inputs[2] ? g.tensors[node.inputs[2]] : undefined;
  const bias = bt ? paramOf(bt.name, bt.shape, bt.data as Float32Array) : undefined;
  const isDepthwise = q.c === q.group;
  const og = q.outC / q.group;
  const k = (q.c / q.group) * q.kh * q.kw;
  const p = q.oh * q.ow;
  return {
    node,
    inputs: [node.inputs[0]],
    params: bias ? [weight, bias] : [weight],
    buffers: [],
    forward([xv], n) {
      const y = new Float32Array(n * q.outC * p);
      const cols: Float32Array[] = [];
      if (isDepthwise) depthwise(q, n, xv, weight.data, y);
      else {
        for (let grp = 0; grp < q.group; grp++) {
          const c = im2col(q, xv, n, grp);
          cols.push(c);
          const rows = kernels().gemmF32(c, n * p, k, weight.data.subarray(grp * og * k, (grp + 1) * og * k), og);
          for (let b = 0; b < n; b++)
            for (let o = 0; o < og; o++) {
              const dst = (b * q.outC + grp * og + o) * p;
              for (let i = 0; i < p; i++) y[dst + i] = rows[(b * p + i) * og + o];
            }
        }
      }
      if (bias) for (let b = 0; b < n; b++) for (let o = 0; o < q.outC; o++) addBias(y, (b * q.outC + o) * p, p, bias.data[o]);
      return { y, saved: cols };
    },
    backward(gy, [xv], f, n, grads) {
      const dx = new Float32Array(xv.length);
      const dw = grads[0];
      if (bias) {
        const db = grads[1];
        for (let b = 0; b < n; b++)
          for (let o = 0; o < q.outC; o++) {
            let s = 0;
            for (let i = (b * q.outC + o) * p, e = i + p; i < e; i++) s += gy[i];
            db[o] += s;
          }
      }
      if (isDepthwise) {
        depthwise(q, n, xv, weight.data, gy, { gy, dw, dx });
        return [dx];
      }
      const cols = f.saved as Float32Array[];
      for (let grp = 0; grp < q.group; grp++) {
        const gRows = groupRows(q, gy, n, grp);
        const wg = weight.data.subarray(grp * og * k, (grp + 1) * og * k);
        const dwg = kernels().gemmF32(transpose(gRows, n * p, og), og, n * p, transpose(cols[grp], n * p, k), k);
        const base = grp * og * k;
        for (let i = 0; i < dwg.length; i++) dw[base + i] += dwg[i];
        const dCols = kernels().gemmF32(gRows, n * p, og, transpose(wg, og, k), k);
        col2im(q, dCols, n, grp, dx);
      }
      return [dx];
    },
  };
}

function addBias(y: Float32Array, from: number, len: number, b: number): void {
  for (let i = from; i < from + len; i++) y[i] += b;
}
