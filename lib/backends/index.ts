/**
 * Backend selection: native when a binary loads, else the TS twin, with the
 * reason kept. `EDGEOPT_FORCE_TS=1` forces TS; `EDGEOPT_ISA` forces a native table.
 */
import { EdgeOptError } from '../errors';
import { loadAddon, type NativeAddon } from './native/addon';
import { nativeKernels } from './native/kernels';
import { tsKernels } from './ts/kernels';
import type { BackendInfo, Kernels } from './types';

export type { BackendInfo, Kernels, RowQuantized, SymmetricQuantized } from './types';

export function backendInfo(): BackendInfo {
  const { addon, reason } = loadAddon();
  if (!addon) return { native: false, reason, isa: [], kernel: 'ts', kernels: ['ts'], unavailable: [], notes: [] };
  const info = addon.info();
  return {
    native: true,
    isa: info.isa,
    kernel: info.kernel,
    kernels: [...info.kernels, 'ts'],
    unavailable: info.tables.filter((t) => t.missing.length > 0),
    notes: info.notes,
  };
}

/** The native addon, or null when it did not load. */
export function nativeAddon(): NativeAddon | null {
  return loadAddon().addon;
}

/** The kernels in use (native if available), or a named table ('ts', 'scalar', 'avx2', ...). */
export function kernels(name?: string): Kernels {
  if (name === 'ts') return tsKernels;
  const { addon, reason } = loadAddon();
  if (!addon) {
    if (name === undefined) return tsKernels;
    throw new EdgeOptError('E_ISA', `kernel table '${name}' needs the native backend: ${reason}`);
  }
  if (name !== undefined && !addon.info().kernels.includes(name)) {
    throw new EdgeOptError(
      'E_ISA',
      `kernel table '${name}' is unknown or not supported here (have: ${addon.info().kernels.join(', ')}, ts)`,
    );
  }
  return nativeKernels(addon, name);
}
