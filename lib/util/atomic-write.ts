import * as fs from 'node:fs';
import * as path from 'node:path';

/** Writes a file via a temp file + rename, so a crash never leaves half a file. */
export function writeFileAtomic(file: string, bytes: Uint8Array): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, bytes);
  fs.renameSync(tmp, file);
}
