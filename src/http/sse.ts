/**
 * Server-sent events. One hub per app listens once to the Ferry's run events
 * and fans them out to the open streams: a message's own stream (until the
 * message is terminal) and the live `/v1/stream` of a channel. One shared,
 * low-frequency timer re-reads watched messages (their worker may run in
 * another process) and pings idle streams. A stream is dropped when its client
 * disconnects or stops reading (bounded buffer).
 */
import type { Ferry } from "../bus/ferry.ts";
import type { RunReport } from "../core/events.ts";
import { findMessage, TERMINAL_STATES, viewOf, type MessageView } from "./messages.ts";

const encoder = new TextEncoder();

/** One open event stream. */
export class SseStream {
  readonly response: Response;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #closed = false;
  #onClose: Array<() => void> = [];
  lastWriteAt = Date.now();

  /** @param maxBuffered bytes queued for a slow client before it is dropped. */
  constructor(signal: AbortSignal, maxBuffered: number) {
    const body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#controller = controller;
        },
        cancel: () => this.close(),
      },
      { highWaterMark: maxBuffered, size: (chunk) => chunk.byteLength },
    );
    signal.addEventListener("abort", () => this.close(), { once: true });
    this.response = new Response(body, {
      status: 200,
      headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff", "x-accel-buffering": "no" },
    });
    if (signal.aborted) this.close();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Run `fn` once when the stream closes (client gone, end of stream, shutdown). */
  onClose(fn: () => void): void {
    if (this.#closed) fn();
    else this.#onClose.push(fn);
  }

  #write(text: string): void {
    if (this.#closed) return;
    if ((this.#controller.desiredSize ?? 0) <= 0) {
      this.close(); // the client does not read: drop it rather than buffer without bound
      return;
    }
    this.#controller.enqueue(encoder.encode(text));
    this.lastWriteAt = Date.now();
  }

  /** Send one event whose data is JSON. */
  send(event: string, data: unknown): void {
    this.#write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** Send a comment line (keeps proxies from cutting an idle stream). */
  ping(): void {
    this.#write(": ping\n\n");
  }

  /** End the stream. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#controller.close();
    } catch {
      // already closed or cancelled by the client
    }
    for (const fn of this.#onClose.splice(0)) fn();
  }
}

/** The run fields a stream shows (no payload, no result for channel streams). */
function runEvent(r: RunReport, withResult: boolean): Record<string, unknown> {
  return {
    status: r.status,
    id: r.id,
    task: r.task,
    channel: r.channel,
    attempt: r.attempt,
    maxAttempts: r.maxAttempts,
    durationMs: r.durationMs,
    startedAt: r.startedAt,
    message: r.message,
    correlationId: r.correlationId ?? null,
    ...(r.error ? { error: r.error } : {}),
    ...(r.nextRunAt !== undefined ? { nextRunAt: r.nextRunAt } : {}),
    ...(withResult && r.result !== undefined ? { result: r.result } : {}),
  };
}

interface Watch {
  stream: SseStream;
  last: MessageView;
  checking: boolean;
}

/** Options of the {@link SseHub}. */
export interface SseHubOptions {
  /** How often watched messages are re-read and idle streams pinged, in ms. Default 2000. */
  checkMs?: number;
  /** Most streams open at once. Default 10,000. */
  maxStreams?: number;
  /** Bytes queued for one slow client before it is dropped. Default 1 MiB. */
  maxBuffered?: number;
}

/** Fans run events out to open streams. */
export class SseHub {
  readonly #ferry: Ferry;
  readonly #checkMs: number;
  readonly maxStreams: number;
  readonly #maxBuffered: number;
  #streams = new Set<SseStream>();
  #watches = new Map<string, Set<Watch>>();
  #channels = new Map<SseStream, string | undefined>();
  #timer: NodeJS.Timeout | undefined;
  #unlisten: Array<() => void>;

  constructor(ferry: Ferry, options: SseHubOptions = {}) {
    this.#ferry = ferry;
    this.#checkMs = options.checkMs ?? 2000;
    this.maxStreams = options.maxStreams ?? 10_000;
    this.#maxBuffered = options.maxBuffered ?? 1 << 20;
    this.#unlisten = [
      ferry.events.on("run", (r) => this.#onRun(r)),
      ferry.events.on("run:start", (s) => {
        for (const w of this.#watches.get(s.id) ?? []) this.#refresh(w);
      }),
    ];
  }

  /** Streams open now. */
  get size(): number {
    return this.#streams.size;
  }

  /** Messages watched now. */
  get watched(): number {
    return this.#watches.size;
  }

  /** Open a stream for a request; it is forgotten when it closes. */
  open(signal: AbortSignal): SseStream {
    const stream = new SseStream(signal, this.#maxBuffered);
    this.#streams.add(stream);
    stream.onClose(() => {
      this.#streams.delete(stream);
      this.#channels.delete(stream);
      if (this.#streams.size === 0 && this.#timer) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    });
    if (!stream.closed && !this.#timer) {
      this.#timer = setInterval(() => this.#tick(), this.#checkMs);
      this.#timer.unref();
    }
    return stream;
  }

  /** Follow one message: its state now, each run, and its final state; then close. */
  watch(stream: SseStream, view: MessageView): void {
    stream.send("state", view);
    if (TERMINAL_STATES.has(view.state)) return stream.close();
    const w: Watch = { stream, last: view, checking: false };
    let set = this.#watches.get(view.id);
    if (!set) this.#watches.set(view.id, (set = new Set()));
    set.add(w);
    stream.onClose(() => {
      const s = this.#watches.get(view.id);
      s?.delete(w);
      if (s?.size === 0) this.#watches.delete(view.id);
    });
  }

  /** Send every run of `channel` (every channel when undefined) to `stream`. */
  follow(stream: SseStream, channel: string | undefined): void {
    this.#channels.set(stream, channel);
    stream.send("ready", { channel: channel ?? null });
  }

  #onRun(r: RunReport): void {
    for (const [stream, channel] of this.#channels) {
      if (channel === undefined || channel === r.channel) stream.send("run", runEvent(r, false));
    }
    const set = this.#watches.get(r.id);
    if (!set) return;
    for (const w of set) {
      w.stream.send("run", runEvent(r, true));
      this.#refresh(w);
    }
  }

  /** Re-read a watched message; send its state when it changed; close when terminal. */
  #refresh(w: Watch): void {
    if (w.checking || w.stream.closed) return;
    w.checking = true;
    findMessage(this.#ferry, w.last.id).then(
      ({ record }) => {
        w.checking = false;
        const view = viewOf(record);
        if (view.state !== w.last.state || view.attempt !== w.last.attempt || view.errors.length !== w.last.errors.length) {
          w.last = view;
          w.stream.send("state", view);
        }
        if (TERMINAL_STATES.has(view.state)) w.stream.close();
      },
      (err: unknown) => {
        w.checking = false;
        // Pruned or gone: say so and end; a transport hiccup is retried on the next tick.
        if ((err as { code?: string })?.code === "NOT_FOUND") {
          w.stream.send("gone", { id: w.last.id });
          w.stream.close();
        }
      },
    );
  }

  #tick(): void {
    const now = Date.now();
    for (const set of this.#watches.values()) for (const w of set) this.#refresh(w);
    for (const s of this.#streams) if (now - s.lastWriteAt >= this.#checkMs) s.ping();
  }

  /** Close every stream and stop listening. */
  close(): void {
    for (const off of this.#unlisten) off();
    for (const s of [...this.#streams]) s.close();
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
