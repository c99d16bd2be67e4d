/**
 * The compressed form of an .eom file (`encodeEom(graph, { compress: true })`): a 16-byte envelope
 * header, then one brotli stream (Node's zlib, no dependency) of the plain .eom bytes with every
 * multi-byte tensor entry stored as byte planes (eom-codecs.ts). Layout:
 *
 *   0..3   'EOMZ'          (as a safetensors header length this runs past any file: plain readers refuse it)
 *   4      envelope version (1)
 *   5      flags: bit 0 = multi-byte entries are byte planes
 *   6..7   zero
 *   8..15  length of the plain .eom, u64 little-endian
 *   16..   brotli stream
 *
 * Decompression is bounded before it starts: the declared length may not exceed MAX_EXPANSION times
 * the stream (real models compress 1.1-10x; the writer keeps any model that would compress further
 * in the plain form), and brotli stops at that length (maxOutputLength).
 */
import * as zlib from 'node:zlib';

export const ENVELOPE_MAGIC = 'EOMZ';
export const ENVELOPE_VERSION = 1;
export const ENVELOPE_HEADER_BYTES = 16;
export const FLAG_BYTE_PLANES = 1;
/** The largest declared/compressed length ratio a reader accepts (a 1 KB file may ask for 1 MB). */
export const MAX_EXPANSION = 1024;
/** Brotli's best setting up to this plain size; above it a fast one (quality 11 runs at about 1 MB/s). */
const BEST_QUALITY_BYTES = 16 * 1024 * 1024;

export function isEnvelope(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && Buffer.from(bytes.buffer, bytes.byteOffset, 4).toString('latin1') === ENVELOPE_MAGIC;
}

/** Wraps plain .eom bytes (entries already in byte planes), or returns undefined when the result would be unreadable by the bound. */
export function wrapEnvelope(plain: Uint8Array): Buffer | undefined {
  const stream = zlib.brotliCompressSync(plain, {
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: plain.length <= BEST_QUALITY_BYTES ? zlib.constants.BROTLI_MAX_QUALITY : 5,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: plain.length,
    },
  });
  if (plain.length > stream.length * MAX_EXPANSION) return undefined;
  const head = Buffer.alloc(ENVELOPE_HEADER_BYTES);
  head.write(ENVELOPE_MAGIC, 0, 'latin1');
  head[4] = ENVELOPE_VERSION;
  head[5] = FLAG_BYTE_PLANES;
  head.writeBigUInt64LE(BigInt(plain.length), 8);
  return Buffer.concat([head, stream]);
}

/** The plain bytes inside an envelope; `fail` throws (E_FORMAT) with the message. */
export function unwrapEnvelope(bytes: Buffer, maxPlainBytes: number, fail: (msg: string) => never): { plain: Buffer; bytePlanes: boolean } {
  if (bytes.length < ENVELOPE_HEADER_BYTES)
    fail(`compressed .eom truncated: ${bytes.length} bytes, its header has ${ENVELOPE_HEADER_BYTES}`);
  if (bytes[4] !== ENVELOPE_VERSION)
    fail(`compressed .eom envelope version ${bytes[4]} is not supported (this build reads ${ENVELOPE_VERSION})`);
  if ((bytes[5] & ~FLAG_BYTE_PLANES) !== 0 || bytes[6] !== 0 || bytes[7] !== 0) fail('compressed .eom header has unknown flags');
  const declared = bytes.readBigUInt64LE(8);
  const streamBytes = bytes.length - ENVELOPE_HEADER_BYTES;
  if (declared === 0n || declared > BigInt(maxPlainBytes) || declared > BigInt(streamBytes) * BigInt(MAX_EXPANSION))
    fail(
      `compressed .eom declares ${declared} plain bytes for a ${streamBytes}-byte stream (at most ${MAX_EXPANSION}x and ${maxPlainBytes} bytes)`,
    );
  const length = Number(declared);
  let plain: Buffer;
  try {
    plain = zlib.brotliDecompressSync(bytes.subarray(ENVELOPE_HEADER_BYTES), { maxOutputLength: length });
  } catch (err) {
    return fail(`compressed .eom stream is corrupt or longer than the declared ${length} bytes (${(err as Error).message})`);
  }
  if (plain.length !== length) fail(`compressed .eom stream holds ${plain.length} bytes, the header declares ${length}`);
  return { plain, bytePlanes: (bytes[5] & FLAG_BYTE_PLANES) !== 0 };
}
