/**
 * Data named on the command line: a folder in the MNIST layout
 * (<split>-images.npy[.gz] + <split>-labels.npy[.gz]) or an images .npy file
 * with its labels next to it (images.npy -> labels.npy, x-images.npy -> x-labels.npy)
 * or given explicitly.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EdgeOptError } from '../errors';
import { loadDataset, loadImageFolder, type Dataset } from './dataset';

function siblingLabels(images: string): string | undefined {
  const dir = path.dirname(images);
  const base = path.basename(images);
  const stem = base.replace('images', 'labels').replace(/\.npy(\.gz)?$/, '');
  for (const name of [`${stem}.npy`, `${stem}.npy.gz`, 'labels.npy', 'labels.npy.gz']) {
    const p = path.join(dir, name);
    if (name !== base && fs.existsSync(p)) return p;
  }
  return undefined;
}

export function loadDataSource(source: string, options: { split?: 'train' | 'test'; labels?: string; needLabels?: boolean } = {}): Dataset {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(source);
  } catch {
    throw new EdgeOptError('E_NOT_FOUND', `no such data file or folder: ${source}`);
  }
  if (stat.isDirectory()) return loadImageFolder(source, options.split ?? 'test');
  const labels = options.labels ?? siblingLabels(source);
  if (options.needLabels && !labels) throw new EdgeOptError('E_ARGUMENT', `${source}: no labels found next to it; name them with --eval-labels`);
  return loadDataset(source, labels);
}
