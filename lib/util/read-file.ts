/**
 * Reads a whole file that must be a regular file of bounded size. readFileSync
 * reads '/dev/zero' until memory runs out and blocks forever on a FIFO with no
 * writer; this opens without blocking, checks the type and size first, and then
 * reads exactly the size it checked.
 */
import * as fs from 'node:fs';
import { EdgeOptError } from '../errors';

const { O_RDONLY, O_NONBLOCK, O_NOCTTY } = fs.constants;

function kind(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * The bytes of `file` (`what` names it in errors: 'model file', ...). E_NOT_FOUND
 * when it cannot be opened; E_FORMAT when it is not a regular file or has more
 * than maxBytes; E_IO when reading fails.
 */
export function readRegularFile(file: string, maxBytes: number, what: string): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, O_RDONLY | (O_NONBLOCK ?? 0) | (O_NOCTTY ?? 0));
  } catch (err) {
    throw new EdgeOptError('E_NOT_FOUND', `cannot read ${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new EdgeOptError('E_FORMAT', `${file}: a ${what} must be a regular file, this is ${kind(st)}`);
    if (st.size > maxBytes)
      throw new EdgeOptError('E_FORMAT', `${file}: ${st.size} bytes exceeds the ${maxBytes}-byte limit for a ${what}`);
    const bytes = Buffer.allocUnsafe(st.size);
    let got = 0;
    try {
      for (let n = 1; got < st.size && n > 0; got += n) n = fs.readSync(fd, bytes, got, st.size - got, got);
    } catch (err) {
      throw new EdgeOptError('E_IO', `cannot read ${what} ${file}: ${(err as Error).message}`, { cause: err });
    }
    // A file that shrank while we read it: what is there is all there is.
    return got < st.size ? bytes.subarray(0, got) : bytes;
  } finally {
    fs.closeSync(fd);
  }
}
