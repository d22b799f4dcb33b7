import type { ResponseCoalescer } from "./coalescing-sender.js";

/** Audio chunks held back while the link is busy, joined into one message when it frees up. */
interface HeldAudio {
  readonly heldAudio: true;
  parts: Uint8Array[];
  bytes: number;
}

/** A SynthesizeResponse as the engine host yields it (init shape), or audio held for merging. */
type SynthesizePiece = { kind?: { case?: string; value?: unknown } } | HeldAudio;

const isHeld = (piece: SynthesizePiece): piece is HeldAudio => "heldAudio" in piece;

const audioOf = (piece: SynthesizePiece): Uint8Array | undefined =>
  !isHeld(piece) && piece.kind?.case === "audio" && piece.kind.value instanceof Uint8Array
    ? piece.kind.value
    : undefined;

/**
 * Merges consecutive `audio` pieces of GPUBackendService.Synthesize up to `maxBytes` per message
 * (PCM is a byte stream: where one message ends carries no meaning). Formats and other pieces are
 * never merged, so they keep their place in the stream, and neither is the first audio piece: the
 * caller's first byte never waits for more audio. One coalescer serves one call.
 */
export function createAudioCoalescer(maxBytes: number): ResponseCoalescer<unknown> {
  let audioSent = false;
  const coalescer: ResponseCoalescer<SynthesizePiece> = {
    sending(piece) {
      if (isHeld(piece) || audioOf(piece)) audioSent = true;
    },
    merge(held, next) {
      const audio = audioOf(next);
      if (!audio) return undefined;
      if (isHeld(held)) {
        if (held.bytes + audio.byteLength > maxBytes) return undefined;
        held.parts.push(audio);
        held.bytes += audio.byteLength;
        return held;
      }
      const first = audioOf(held);
      // The first audio of the call leaves alone: the caller's first byte waits for nothing.
      if (!first || !audioSent || first.byteLength + audio.byteLength > maxBytes) return undefined;
      return { heldAudio: true, parts: [first, audio], bytes: first.byteLength + audio.byteLength };
    },
    seal(held) {
      if (!isHeld(held)) return held;
      const joined = new Uint8Array(held.bytes);
      let offset = 0;
      for (const part of held.parts) {
        joined.set(part, offset);
        offset += part.byteLength;
      }
      return { kind: { case: "audio", value: joined } };
    },
  };
  return coalescer as ResponseCoalescer<unknown>;
}
