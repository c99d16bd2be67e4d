import * as fs from 'node:fs';
import * as path from 'node:path';
import { EdgeOptError } from '../errors';

/**
 * Writes a file via a temp file + rename, so a crash never leaves half a file. A failure
 * (missing folder, no permission, disk full) removes the temp file and throws E_IO naming the file.
 */
export function writeFileAtomic(file: string, bytes: Uint8Array): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, bytes);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    const e = err as NodeJS.ErrnoException;
    throw new EdgeOptError('E_IO', `cannot write ${file}: ${e.code ?? ''} ${e.message}`.trim(), { cause: err });
  }
}
