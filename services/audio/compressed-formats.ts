/**
 * Names and MIME types of the compressed formats, apart from their encoders so that callers can
 * name a format without loading the codecs (megabytes of JavaScript and WASM).
 */

/** Compressed formats the gateway encodes besides MP3. */
export type CompressedFormat = "opus" | "flac" | "aac";

/** MIME type of each compressed format. */
export const COMPRESSED_CONTENT_TYPES: Readonly<Record<CompressedFormat, string>> = {
  opus: "audio/ogg; codecs=opus",
  flac: "audio/flac",
  aac: "audio/aac",
};
