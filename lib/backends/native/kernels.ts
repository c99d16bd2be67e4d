/** The native kernel table seen through the common `Kernels` interface. */
import { fromNative } from '../../errors';
import type { Kernels } from '../types';
import type { NativeAddon } from './addon';

/** Wraps the addon; `table` picks a kernel table by name (default: the active one). */
export function nativeKernels(addon: NativeAddon, table?: string): Kernels {
  const call = <T>(what: string, f: () => T): T => {
    try {
      return f();
    } catch (err) {
      throw fromNative(err, what);
    }
  };
  return {
    name: table ?? addon.info().kernel,
    gemmU8S8: (a, zp, m, k, w, n) => call('gemmU8S8', () => addon.gemmU8S8(a, zp, m, k, w, n, table)),
    gemmF32: (x, m, k, w, n) => call('gemmF32', () => addon.gemmF32(x, m, k, w, n, table)),
    epilogueS32: (c, m, n, aScale, wScale, bias, relu) =>
      call('epilogueS32', () => addon.epilogueS32(c, m, n, aScale, wScale, bias, relu, table)),
    quantizeRowsU8: (x, m, k) => call('quantizeRowsU8', () => addon.quantizeRowsU8(x, m, k, table)),
    quantizeSymmetric: (w, n, k, bits, perChannel) => call('quantizeSymmetric', () => addon.quantizeSymmetric(w, n, k, bits, perChannel)),
    dequantizeS8: (q, n, k, scales) => call('dequantizeS8', () => addon.dequantizeS8(q, n, k, scales)),
    pruneMask: (w, count) => call('pruneMask', () => addon.pruneMask(w, count)),
    reluF32: (x) => call('reluF32', () => addon.reluF32(x, table)),
  };
}
