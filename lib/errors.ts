/**
 * The one error class of edgeopt. `code` is stable (match on it, not on the
 * message); the message names the file, tensor, node or model at fault.
 */
export type ErrorCode =
  | 'E_FORMAT' // malformed model or data file
  | 'E_SHAPE' // wrong shape or size
  | 'E_DTYPE' // wrong element type
  | 'E_VALUE' // NaN, infinity or an out-of-range value
  | 'E_ARGUMENT' // a bad option or argument
  | 'E_UNSUPPORTED_OP' // an op this build cannot run or import
  | 'E_NOT_FOUND' // unknown model id, missing file
  | 'E_ISA' // unknown or unsupported EDGEOPT_ISA / kernel name
  | 'E_NATIVE' // the native backend failed
  | 'E_PLUGIN' // an NPU plugin is missing or failed
  | 'E_ALLOC' // out of memory
  | 'E_IO' // a file or folder cannot be read or written
  | 'E_TIMEOUT' // gave up waiting (a deadline or timeout option passed)
  | 'E_STATE' // the object is disposed or busy
  | 'E_BUSY' // a bounded queue is full: retry later (HTTP 503)
  | 'E_ABORTED'; // the caller's AbortSignal fired (an AbortError)

export class EdgeOptError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EdgeOptError';
    this.code = code;
  }
}

/**
 * A run cancelled by its AbortSignal. `name` is 'AbortError' (what fetch and
 * node:events callers check); it is an EdgeOptError with code E_ABORTED, and
 * `cause` is the signal's reason.
 */
export class AbortError extends EdgeOptError {
  constructor(message = 'the operation was aborted', options?: { cause?: unknown }) {
    super('E_ABORTED', message, options);
    this.name = 'AbortError';
  }
}

/** Errors thrown by the native addon carry `code`; give them our class. */
export function fromNative(err: unknown, context?: string): EdgeOptError {
  if (err instanceof EdgeOptError) return err;
  const e = err as { code?: string; message?: string };
  const code = (typeof e?.code === 'string' && e.code.startsWith('E_') ? e.code : 'E_NATIVE') as ErrorCode;
  const message = context ? `${context}: ${e?.message ?? String(err)}` : (e?.message ?? String(err));
  return new EdgeOptError(code, message, { cause: err });
}
