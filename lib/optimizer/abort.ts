/** Cancellation for long searches: an aborted signal rejects with an AbortError (the DOM convention fetch and timers follow). */
import { AbortError } from '../errors';

export function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  // edgeopt's AbortError (an EdgeOptError, code E_ABORTED), as sessions and batchers reject with.
  return new AbortError(reason === undefined ? 'The operation was aborted' : `The operation was aborted: ${String(reason)}`, {
    cause: reason,
  });
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/** Lets timers, I/O and abort handlers run between steps of synchronous work. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
