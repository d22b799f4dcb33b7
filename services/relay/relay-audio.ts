import { parseWav, wavDurationMs } from "../audio/wav.js";

/** Length and rate of a clip, for the relay's `X-Duration-Seconds` and `X-Sample-Rate`. */
export interface ClipFacts {
  /** Length, in seconds (two decimals, as the relay rounded). */
  durationSeconds: number;
  /** Sample rate, in Hz; 0 when unknown. */
  sampleRateHz: number;
}

/**
 * Reads a whole clip's length and rate: WAV from its header, `audio/L16` from its content type
 * and size, MP3 by its frames (music-metadata, loaded on first use).
 */
export async function clipFacts(data: Uint8Array, contentType: string): Promise<ClipFacts> {
  const round = (seconds: number) => Math.round(seconds * 100) / 100;
  if (contentType.startsWith("audio/wav")) {
    const info = parseWav(data);
    return { durationSeconds: round(wavDurationMs(info) / 1000), sampleRateHz: info.sampleRateHz };
  }
  const rate = Number(/;\s*rate=(\d+)/.exec(contentType)?.[1] ?? 0);
  if (contentType.startsWith("audio/L16") && rate > 0) {
    return { durationSeconds: round(data.byteLength / 2 / rate), sampleRateHz: rate };
  }
  const { parseBuffer } = await import("music-metadata");
  const meta = await parseBuffer(data, { mimeType: contentType }, { duration: true }).catch(
    () => undefined,
  );
  return {
    durationSeconds: round(meta?.format.duration ?? 0),
    sampleRateHz: meta?.format.sampleRate ?? rate,
  };
}
