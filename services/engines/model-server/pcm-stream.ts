/**
 * Turns a model server's audio body, WAV or raw 16-bit PCM, into whole-frame PCM chunks as the
 * bytes arrive: a WAV header is read incrementally and the data behind it passes straight on.
 */
import { parseWav, WAV_UNKNOWN_SIZE } from "../../audio/wav.js";
import { SynthesisFailedError } from "../engine-errors.js";
import type { PcmFormat } from "../tts-engine.js";
import { MODEL_SERVER_SETTING_ENV } from "./model-server-errors.js";

/** Largest WAV header (all chunks before `data`) accepted, in bytes. */
export const MAX_WAV_HEADER_BYTES = 1024 * 1024;

/** Options of {@link readPcmStream}. */
export interface PcmStreamOptions {
  /** Engine id for error messages. */
  engineId: string;
  /**
   * The format raw PCM is in, and the one a WAV must match unless `adoptWavFormat`. Undefined
   * means "unknown": a WAV's header says it, raw PCM is refused.
   */
  format: PcmFormat | undefined;
  /**
   * Take a WAV's rate and channels as the answer's format (reported through `onFormat`) instead
   * of requiring `format`. @default false
   */
  adoptWavFormat?: boolean;
  /** Called once, before the first PCM, with the format the audio is in. */
  onFormat?(format: PcmFormat): void;
}

/**
 * Yields PCM from `body` as it arrives, each chunk a whole number of frames. A body starting with
 * `RIFF` is read as WAV: its header is buffered (up to {@link MAX_WAV_HEADER_BYTES}) and checked
 * against `format` (16-bit integer PCM at the same rate and channels), then its data passes on,
 * stopping at the declared data size unless it is 0 or 0xFFFFFFFF (streaming writers); with
 * `adoptWavFormat` its rate and channels become the format. Anything else is taken as raw PCM in
 * `format`, and refused when the format is unknown. A trailing partial frame is dropped. Throws
 * `SynthesisFailedError` for a WAV that is malformed or in another format.
 */
export async function* readPcmStream(
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: PcmStreamOptions,
): AsyncIterable<Uint8Array> {
  const { engineId } = options;
  let format = options.format;
  let frameBytes = format ? 2 * format.channels : 2;
  const settle = (found: PcmFormat | undefined) => {
    if (!found) {
      throw new SynthesisFailedError(
        engineId,
        `the model server sent raw PCM without saying its sample rate; set ${MODEL_SERVER_SETTING_ENV.sampleRateHz} or ask for WAV`,
      );
    }
    format = found;
    frameBytes = 2 * found.channels;
    options.onFormat?.(found);
  };
  let head: Uint8Array = new Uint8Array(0);
  let mode: "sniff" | "wav-header" | "data" = "sniff";
  let remaining = Number.POSITIVE_INFINITY;
  let carry: Uint8Array = new Uint8Array(0);

  const emit = (bytes: Uint8Array): Uint8Array | undefined => {
    let data = bytes;
    if (data.byteLength > remaining) data = data.subarray(0, remaining);
    remaining -= data.byteLength;
    const joined = carry.byteLength > 0 ? concat(carry, data) : data;
    const whole = joined.byteLength - (joined.byteLength % frameBytes);
    carry = joined.slice(whole);
    return whole > 0 ? joined.subarray(0, whole) : undefined;
  };

  for await (const piece of body) {
    if (mode === "data") {
      if (remaining <= 0) continue;
      const out = emit(piece);
      if (out) yield out;
      continue;
    }
    head = concat(head, piece);
    if (mode === "sniff") {
      if (head.byteLength < 4) continue;
      mode = ascii(head, 0) === "RIFF" ? "wav-header" : "data";
      if (mode === "data") {
        settle(format);
        const out = emit(head);
        head = new Uint8Array(0);
        if (out) yield out;
        continue;
      }
    }
    const start = locateWavData(head, engineId);
    if (start === undefined) {
      if (head.byteLength > MAX_WAV_HEADER_BYTES) {
        throw new SynthesisFailedError(
          engineId,
          `the model server's WAV header passed ${MAX_WAV_HEADER_BYTES} bytes without a data chunk`,
        );
      }
      continue;
    }
    settle(
      checkWavFormat(
        head.subarray(0, start.dataOffset),
        options.adoptWavFormat ? undefined : format,
        engineId,
      ),
    );
    if (start.dataBytes !== 0 && start.dataBytes !== WAV_UNKNOWN_SIZE) {
      remaining = start.dataBytes;
    }
    mode = "data";
    const out = emit(head.subarray(start.dataOffset));
    head = new Uint8Array(0);
    if (out) yield out;
  }
  if (mode !== "data" && head.byteLength > 0) {
    if (mode === "wav-header") {
      throw new SynthesisFailedError(engineId, "the model server's WAV answer ended in its header");
    }
    settle(format);
    const out = emit(head);
    if (out) yield out;
  }
}

// Finds the data chunk of a WAV whose header may still be arriving; undefined means "need more".
function locateWavData(
  bytes: Uint8Array,
  engineId: string,
): { dataOffset: number; dataBytes: number } | undefined {
  if (bytes.byteLength < 12) return undefined;
  if (ascii(bytes, 8) !== "WAVE") {
    throw new SynthesisFailedError(engineId, "the model server answered RIFF that is not WAVE");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 12;
  while (offset + 8 <= bytes.byteLength) {
    const id = ascii(bytes, offset);
    const size = view.getUint32(offset + 4, true);
    if (id === "data") return { dataOffset: offset + 8, dataBytes: size };
    offset += 8 + size + (size % 2);
  }
  return undefined;
}

/** Checks a WAV header (16-bit integer PCM, and `format` when given); returns its format. */
function checkWavFormat(
  header: Uint8Array,
  format: PcmFormat | undefined,
  engineId: string,
): PcmFormat {
  let info: ReturnType<typeof parseWav>;
  try {
    info = parseWav(header);
  } catch (err) {
    throw new SynthesisFailedError(
      engineId,
      `the model server's WAV is unusable: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (info.bitsPerSample !== 16) {
    throw new SynthesisFailedError(
      engineId,
      `the model server sent ${info.bitsPerSample}-bit WAV; voxgate takes 16-bit PCM`,
    );
  }
  if (format && (info.sampleRateHz !== format.sampleRateHz || info.channels !== format.channels)) {
    throw new SynthesisFailedError(
      engineId,
      `the model server sent ${info.sampleRateHz} Hz, ${info.channels} channel(s); this agent announced ${format.sampleRateHz} Hz, ${format.channels} channel(s) (${MODEL_SERVER_SETTING_ENV.sampleRateHz})`,
    );
  }
  return { sampleRateHz: info.sampleRateHz, channels: info.channels };
}

function ascii(bytes: Uint8Array, offset: number): string {
  return String.fromCharCode(...bytes.subarray(offset, offset + 4));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.byteLength === 0) return b;
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}
