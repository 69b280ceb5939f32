/**
 * The abort handle of one run: an AbortController whose AbortSignal is made
 * only when someone asks for it.
 *
 * In Node 20 making an AbortSignal (an EventTarget) costs several microseconds,
 * and listening to one costs about one more; for a short handler that was the
 * largest part of the worker's own cost per run. Most runs end without an
 * abort, and many handlers never read `ctx.signal`, so the signal is made on
 * first read of {@link RunControl.signal}, and the worker's own listener (the
 * in-process runner's) hangs on {@link RunControl.onAbort} instead of the signal.
 * It has AbortController's shape, so executors that take an AbortController
 * take it unchanged.
 */
export class RunControl {
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;
  /** Called once, synchronously, when the run is aborted (after the signal's own listeners). One listener only. */
  onAbort: ((reason: unknown) => void) | undefined;

  /** The run's signal, made on first read (already aborted if the run was). */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /** True once {@link abort} was called. */
  get aborted(): boolean {
    return this.#aborted;
  }

  /** Why the run was aborted (undefined until it is). */
  get reason(): unknown {
    return this.#reason;
  }

  /** Abort the run: the signal (if made) fires, then {@link onAbort}. Later calls do nothing. */
  abort(reason?: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason ?? new DOMException("This operation was aborted", "AbortError");
    this.#controller?.abort(this.#reason);
    this.onAbort?.(this.#reason);
  }
}

/**
 * Call `fn` once when `controller` aborts (at once if it already has); returns
 * a function that stops listening. A {@link RunControl} is listened to without
 * making its signal.
 */
export function whenAborted(controller: AbortController | RunControl, fn: (reason: unknown) => void): () => void {
  if (controller instanceof RunControl) {
    if (controller.aborted) {
      fn(controller.reason);
      return () => {};
    }
    controller.onAbort = fn;
    return () => {
      if (controller.onAbort === fn) controller.onAbort = undefined;
    };
  }
  const signal = controller.signal;
  const listener = () => fn(signal.reason);
  if (signal.aborted) {
    listener();
    return () => {};
  }
  signal.addEventListener("abort", listener, { once: true });
  return () => signal.removeEventListener("abort", listener);
}
