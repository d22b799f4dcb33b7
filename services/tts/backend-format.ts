import { Code, ConnectError } from "@connectrpc/connect";
import type { AudioFormat } from "../../gen/voxgate/v1/audio_pb.js";

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
