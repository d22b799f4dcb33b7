import { Code, ConnectError } from "@connectrpc/connect";
import type { AudioFormat, WordTimings } from "../../gen/voxgate/v1/audio_pb.js";

/** Highest sample rate a backend may announce, in Hz. */
export const MAX_SAMPLE_RATE_HZ = 768_000;
/** Most interleaved channels a backend may announce. */
export const MAX_CHANNELS = 16;
/** Longest content type a backend may announce, in characters. */
const MAX_CONTENT_TYPE_CHARS = 256;

/**
 * Checks the audio format a backend announced before any of its audio is used: backends (agents
 * above all) are untrusted, and a sample rate of −1 or a content type with CR/LF would otherwise
 * fail later, while encoding or writing headers, as a 500 after the call can no longer move.
 * @throws ConnectError INTERNAL naming the backend and the field: a backend fault, so the call
 *   fails over to the next backend like any other before its first byte.
 */
export function checkBackendFormat(format: AudioFormat, backendId: string): void {
  const fail = (what: string) => {
    throw new ConnectError(
      `backend ${backendId} announced an invalid audio format: ${what}`,
      Code.Internal,
    );
  };
  if (
    !Number.isInteger(format.sampleRateHz) ||
    format.sampleRateHz < 1 ||
    format.sampleRateHz > MAX_SAMPLE_RATE_HZ
  ) {
    fail(`sample_rate_hz ${format.sampleRateHz} is outside 1..${MAX_SAMPLE_RATE_HZ}`);
  }
  if (!Number.isInteger(format.channels) || format.channels < 1 || format.channels > MAX_CHANNELS) {
    fail(`channels ${format.channels} is outside 1..${MAX_CHANNELS}`);
  }
  // A content type goes into response headers: printable ASCII only, and short.
  if (
    format.contentType.length > MAX_CONTENT_TYPE_CHARS ||
    /[^\x20-\x7e]/.test(format.contentType)
  ) {
    fail(
      `content_type ${JSON.stringify(format.contentType.slice(0, 64))} is not a printable header value of at most ${MAX_CONTENT_TYPE_CHARS} characters`,
    );
  }
}

/**
 * Checks word timings a backend sent for a text of `textLength` UTF-16 code units: each word must
 * be a piece of that text (an offset inside it, no longer than it) with `0 <= start_ms <= end_ms`.
 * Backends are untrusted, and these values reach callers' caption code as they are.
 * @throws ConnectError INTERNAL naming the backend and the first bad word.
 */
export function checkWordTimings(
  timings: WordTimings,
  textLength: number,
  backendId: string,
): void {
  for (const [i, w] of timings.words.entries()) {
    const problem =
      w.word.length === 0 || w.word.length > textLength
        ? `word ${i} is ${w.word.length} characters long`
        : w.textOffset < 0 || w.textOffset + w.word.length > textLength
          ? `word ${i} lies outside the text (text_offset ${w.textOffset})`
          : w.startMs < 0n || w.endMs < w.startMs
            ? `word ${i} has start_ms ${w.startMs} and end_ms ${w.endMs}`
            : undefined;
    if (problem) {
      throw new ConnectError(
        `backend ${backendId} sent invalid word timings: ${problem}`,
        Code.Internal,
      );
    }
  }
}
