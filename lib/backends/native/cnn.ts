/**
 * The native CNN kernels one call at a time, errors as EdgeOptError: what the
 * kernel tests compare against the TS twin (lib/backends/ts/cnn). The engine
 * runs these kernels through a native Program instead.
 */
import { fromNative } from '../../errors';
import type { NativeAddon, NativeCnnExports } from './addon';

/** The addon's `cnn` exports bound to one kernel table (default: the active one). */
export function nativeCnn(addon: NativeAddon, table?: string): NativeCnnExports {
  const wrap = <A extends unknown[], R>(name: string, f: (...args: A) => R) =>
    ((...args: A): R => {
      try {
        return f(...args);
      } catch (err) {
        throw fromNative(err, `cnn.${name}`);
      }
    }) as (...args: A) => R;
  const c = addon.cnn;
  return {
    conv: wrap('conv', (x, w, bias, shape, act, batch, _kernel?: string, threads?: number) =>
      c.conv(x, w, bias, shape, act, batch, table, threads),
    ),
    pool: wrap('pool', (kind, x, shape, batch) => c.pool(kind, x, shape, batch, table)),
    globalPool: wrap('globalPool', (kind, x, pixels, ch, batch) => c.globalPool(kind, x, pixels, ch, batch, table)),
    binary: wrap('binary', (fn, a, b, shape, as, bs, act) => c.binary(fn, a, b, shape, as, bs, act, table)),
    activation: wrap('activation', (x, act) => c.activation(x, act, table)),
    softmax: wrap('softmax', (x, outer, axis, inner) => c.softmax(x, outer, axis, inner, table)),
    reduceMean: wrap('reduceMean', (x, outer, axis, inner) => c.reduceMean(x, outer, axis, inner, table)),
    lrn: wrap('lrn', (x, pixels, ch, size, alpha, beta, bias) => c.lrn(x, pixels, ch, size, alpha, beta, bias, table)),
    concat: wrap('concat', (inputs, sizes, outer) => c.concat(inputs, sizes, outer, table)),
    split: wrap('split', (x, sizes, outer) => c.split(x, sizes, outer, table)),
    pad: wrap('pad', (x, inShape, begin, end, value) => c.pad(x, inShape, begin, end, value, table)),
    transpose: wrap('transpose', (x, inShape, perm) => c.transpose(x, inShape, perm, table)),
  };
}
