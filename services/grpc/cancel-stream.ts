/** A grpc-js client call that can be cancelled (sends RST_STREAM CANCEL). */
export interface CancellableCall {
  cancel(): void;
}

/**
 * Cancels a grpc-js client call from a fresh turn of the event loop (`setImmediate`), never from
 * inside the callback or microtask that decided it.
 *
 * Why: code that runs while Node's HTTP/2 session is handling input (a `data`, `trailers` or
 * `close` event, and the promise jobs those settle) is "in scope", and there Node only queues a
 * CANCEL reset, to send it when the scope ends. If the stream is destroyed before that (grpc-js
 * does so right after cancelling) the queued reset finds no stream and is dropped: nghttp2 keeps
 * the stream open with its unsent data, asks Node for more, gets 0 bytes and no end, and emits
 * empty DATA frames in an endless native loop (hundreds of MB/s, event loop starved: an agent
 * thawed after SIGSTOP never reconnected). From `setImmediate` the reset is sent at once.
 */
export function cancelStream(call: CancellableCall): void {
  setImmediate(() => call.cancel());
}
