/**
 * The one way edgeopt writes a file: all or nothing, even under kill -9.
 *
 * 1. A temp file in the target's folder (rename is only atomic within one file
 *    system), created with O_CREAT | O_EXCL | O_NOFOLLOW under an unpredictable
 *    name: nothing planted in advance (a symlink to a victim file, a FIFO) is ever
 *    opened, let alone written through.
 * 2. Every byte written, then fsync: the data is on disk before the name points at it.
 * 3. rename over the target, then fsync of the folder: the new name is durable.
 * 4. On any failure the temp file is removed and E_IO names the file.
 *
 * Temp names carry the writer's pid (`.<name>.<pid>.<random>.tmp`), so a later
 * write to the same file removes what a killed writer left behind (only when that
 * pid is gone: a live writer's temp file is never touched).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EdgeOptError } from '../errors';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_DIRECTORY } = fs.constants;

function ioError(file: string, what: string, err: unknown): EdgeOptError {
  return new EdgeOptError('E_IO', `cannot write ${file}: ${what}: ${(err as Error).message}`, { cause: err });
}

/** Whether a process with this id exists (EPERM: it does, it just is not ours). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temp files of earlier writes to `file` whose writer no longer runs. Best effort. */
function removeStaleTemps(dir: string, base: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  const prefix = `.${base}.`;
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const m = /^(\d+)\.[0-9a-f]{16}\.tmp$/.exec(name.slice(prefix.length));
    if (!m || Number(m[1]) === process.pid || processAlive(Number(m[1]))) continue;
    try {
      fs.unlinkSync(path.join(dir, name)); // a symlink is removed itself, never followed
    } catch {
      // another writer may have removed it first
    }
  }
}

/** fsync of a folder makes a rename inside it durable; platforms without it (Windows) skip it. */
function syncFolder(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, O_RDONLY | (O_DIRECTORY ?? 0));
  } catch {
    return;
  }
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EPERM' && code !== 'EISDIR') throw err;
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes `bytes` to `file` atomically and durably (see the file comment); throws E_IO. */
export function writeFileAtomic(file: string, bytes: Uint8Array): void {
  const dir = path.dirname(path.resolve(file));
  const base = path.basename(file);
  removeStaleTemps(dir, base);
  const tmp = path.join(dir, `.${base}.${process.pid}.${randomBytes(8).toString('hex')}.tmp`);
  let fd: number;
  try {
    fd = fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | (O_NOFOLLOW ?? 0), 0o666);
  } catch (err) {
    throw ioError(file, 'creating the temp file', err);
  }
  let step = 'writing';
  try {
    for (let off = 0; off < bytes.length;) off += fs.writeSync(fd, bytes, off, bytes.length - off);
    step = 'syncing';
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = -1;
    step = 'renaming the temp file over it';
    fs.renameSync(tmp, file);
    step = 'syncing the folder';
    syncFolder(dir);
  } catch (err) {
    if (fd >= 0) fs.closeSync(fd);
    try {
      fs.unlinkSync(tmp);
    } catch {
      // already renamed (the folder sync failed) or never created
    }
    throw ioError(file, step, err);
  }
}
