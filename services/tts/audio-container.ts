import { setImmediate } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { AudioEncoding, type AudioFormat } from "../../gen/voxgate/v1/audio_pb.js";
import type {
  CompressedEncoderOptions,
  CompressedStreamEncoder,
} from "../audio/compressed-encoder.js";
import { COMPRESSED_CONTENT_TYPES, type CompressedFormat } from "../audio/compressed-formats.js";
import { createMp3Encoder, MP3_SAMPLE_RATES_HZ } from "../audio/mp3-encoder.js";
import { encodeWavHeader } from "../audio/wav.js";

/**
 * How PCM from a backend becomes what the caller asked for. It holds no per-call state: each
 * stream gets its own encoder from {@link AudioContainer.createStreamEncoder}.
 */
export interface AudioContainer {
  /** MIME type of the result. */
  contentType: string;
  /** Starts encoding one stream. */
  createStreamEncoder(): AudioStreamEncoder;
  /**
   * Encodes a whole clip from its PCM chunks, `pcmBytes` in all, with exact container sizes (the
   * WAV header says how long the data is). MP3 is encoded in slices that let other calls run.
   */
  encodeClip(pcm: readonly Uint8Array[], pcmBytes: number): Promise<Uint8Array>;
}

/** Encodes one stream of PCM chunks; bytes come out as soon as they are final. */
export interface AudioStreamEncoder {
  /**
   * Encodes the next PCM chunk into the pieces to send now: the first call puts the container
   * header (streaming WAV) in front. MP3 is encoded in slices of {@link MP3_SLICE_MS}, each
   * piece leaving before the next slice is encoded, with a turn of the event loop between
   * slices so one long chunk never stalls other calls; a short chunk may give no frame at all.
   * WAV and PCM answer with a plain array (no async step per chunk on the hot path).
   */
  encode(pcm: Uint8Array): readonly Uint8Array[] | AsyncIterable<Uint8Array>;
  /**
   * Ends the stream and returns its last bytes (buffered MP3 frames; the WAV header of a stream
   * that had no audio; the last Ogg page, FLAC or ADTS frames). Later calls return nothing.
   */
  end(): Uint8Array | Promise<Uint8Array>;
  /**
   * Abandons the stream (the caller went away, or a failover restarts it): frees the codec's
   * worker thread where there is one. Idempotent; a no-op after {@link end}.
   */
  cancel(): Promise<void>;
}

/**
 * Audio encoded to MP3 in one go before the encoder yields, in ms: about 5 to 20 ms of CPU at
 * 22050 Hz, so the first frames leave early and other calls wait little.
 */
export const MP3_SLICE_MS = 250;

/** Options of {@link chooseContainer}. */
export interface AudioContainerOptions {
  /**
   * Constant MP3 bit rate, in kbit/s (setting mp3BitrateKbps); missing or 0: the encoder's own rate
   * per channel.
   */
  mp3BitrateKbps?: number;
  /**
   * SpeexDSP quality (0..10) of the resampler that converts a backend's rate to `sample_rate_hz`.
   * @default 7
   */
  resamplerQuality?: number;
  /** Opus bit rate, in kbit/s. @default 32 per channel */
  opusBitrateKbps?: number;
  /** AAC bit rate, in kbit/s. @default 64 per channel */
  aacBitrateKbps?: number;
}

const EMPTY = new Uint8Array(0);

/**
 * Chooses the container for `encoding` given the PCM `format` (the backend's, at the rate asked
 * for): WAV (a streaming header first, or the exact header for a whole clip), raw PCM as it came,
 * or MP3, Ogg Opus, FLAC or AAC encoded on the gateway.
 *
 * @throws ConnectError UNIMPLEMENTED for encodings without an encoder, for MP3 at a sample rate
 *   or channel count MP3 cannot carry, and for Opus or AAC with more than 2 channels (FLAC: 8);
 *   INTERNAL when the backend did not send 16-bit PCM (a backend bug, not the caller's).
 */
export function chooseContainer(
  encoding: AudioEncoding,
  format: Pick<AudioFormat, "encoding" | "sampleRateHz" | "channels">,
  options: AudioContainerOptions = {},
): AudioContainer {
  if (format.encoding !== AudioEncoding.PCM) {
    throw new ConnectError(
      `backend sent ${AudioEncoding[format.encoding]} audio; the gateway expects PCM`,
      Code.Internal,
    );
  }
  const { sampleRateHz, channels } = format;
  switch (encoding) {
    case AudioEncoding.UNSPECIFIED:
    case AudioEncoding.WAV:
      return {
        contentType: "audio/wav",
        createStreamEncoder() {
          let header: Uint8Array | undefined = encodeWavHeader({ sampleRateHz, channels });
          const takeHeader = () => {
            const bytes = header ?? EMPTY;
            header = undefined;
            return bytes;
          };
          return {
            // Plain arrays: WAV and PCM pass chunks through, with no async step per chunk.
            encode: (pcm) => [header ? concat([takeHeader(), pcm]) : pcm],
            end: takeHeader,
            cancel: async () => {},
          };
        },
        encodeClip: async (pcm, pcmBytes) =>
          concat([encodeWavHeader({ sampleRateHz, channels, dataBytes: pcmBytes }), ...pcm]),
      };
    case AudioEncoding.PCM:
      return {
        contentType: `audio/L16; rate=${sampleRateHz}; channels=${channels}`,
        createStreamEncoder: () => ({
          encode: (pcm) => [pcm],
          end: () => EMPTY,
          cancel: async () => {},
        }),
        encodeClip: async (pcm) => concat(pcm),
      };
    case AudioEncoding.MP3: {
      if (!MP3_SAMPLE_RATES_HZ.includes(sampleRateHz) || (channels !== 1 && channels !== 2)) {
        throw new ConnectError(
          `MP3 cannot carry this backend's ${sampleRateHz} Hz ${channels}-channel audio ` +
            `(it needs 1 or 2 channels at ${MP3_SAMPLE_RATES_HZ.join(", ")} Hz); use WAV or PCM`,
          Code.Unimplemented,
        );
      }
      const bitrate = options.mp3BitrateKbps ? { bitrateKbps: options.mp3BitrateKbps } : {};
      const sliceBytes = Math.ceil((sampleRateHz * MP3_SLICE_MS) / 1000) * channels * 2;
      // A whole clip's length is known before encoding: its MP3 starts with a LAME Info frame
      // (delay and padding) so it decodes to exactly its PCM; a stream's end is not known when
      // its first bytes leave, so it has none.
      const createStreamEncoder = (totalPcmFrames?: number): AudioStreamEncoder => {
        const length = totalPcmFrames === undefined ? {} : { totalPcmFrames };
        const mp3 = createMp3Encoder({ sampleRateHz, channels, ...bitrate, ...length });
        return {
          async *encode(pcm) {
            for (let offset = 0; offset < pcm.byteLength; offset += sliceBytes) {
              if (offset > 0) await setImmediate();
              const frames = mp3.encode(pcm.subarray(offset, offset + sliceBytes));
              if (frames.byteLength > 0) yield frames;
            }
          },
          end: () => mp3.flush(),
          cancel: async () => {},
        };
      };
      return {
        contentType: "audio/mpeg",
        createStreamEncoder: () => createStreamEncoder(),
        async encodeClip(pcm, pcmBytes) {
          const encoder = createStreamEncoder(pcmBytes / (channels * 2));
          const parts: Uint8Array[] = [];
          for (const chunk of pcm) {
            for await (const frames of encoder.encode(chunk)) parts.push(frames);
            await setImmediate();
          }
          parts.push(await encoder.end());
          return concat(parts);
        },
      };
    }
    case AudioEncoding.OPUS:
    case AudioEncoding.FLAC:
    case AudioEncoding.AAC:
      return compressedContainer(COMPRESSED_FORMATS.get(encoding) ?? "flac", format, options);
    default:
      throw new ConnectError(unsupportedMessage(encoding), Code.Unimplemented);
  }
}

/**
 * Starts a compressed encoder, loading the codecs on first use: mediabunny and the WASM builds
 * of libFLAC and FFmpeg's AAC encoder are megabytes of JavaScript that a gateway serving WAV, PCM
 * and MP3 never needs to parse.
 */
async function loadCompressedEncoder(
  options: CompressedEncoderOptions,
): Promise<CompressedStreamEncoder> {
  const { createCompressedEncoder } = await import("../audio/compressed-encoder.js");
  return createCompressedEncoder(options);
}

const COMPRESSED_FORMATS = new Map<AudioEncoding, CompressedFormat>([
  [AudioEncoding.OPUS, "opus"],
  [AudioEncoding.FLAC, "flac"],
  [AudioEncoding.AAC, "aac"],
]);

/**
 * Ogg Opus, FLAC or AAC: each stream gets its own encoder (the codec's state, and for FLAC and AAC
 * a worker thread), started at once so its set-up overlaps the wait for the first audio.
 */
function compressedContainer(
  codec: CompressedFormat,
  format: Pick<AudioFormat, "sampleRateHz" | "channels">,
  options: AudioContainerOptions,
): AudioContainer {
  const { sampleRateHz, channels } = format;
  const maxChannels = codec === "flac" ? 8 : 2;
  if (channels > maxChannels) {
    throw new ConnectError(
      `${codec} is encoded here for 1 to ${maxChannels} channels; this backend sends ${channels}: use WAV or PCM`,
      Code.Unimplemented,
    );
  }
  const bitrateKbps =
    codec === "opus"
      ? options.opusBitrateKbps
      : codec === "aac"
        ? options.aacBitrateKbps
        : undefined;
  const start = (whole: boolean) =>
    loadCompressedEncoder({
      format: codec,
      sampleRateHz,
      channels,
      whole,
      bitrateKbps,
      resamplerQuality: options.resamplerQuality,
    });
  return {
    contentType: COMPRESSED_CONTENT_TYPES[codec],
    createStreamEncoder(): AudioStreamEncoder {
      const ready = start(false);
      // A stream cancelled before its first chunk still frees the encoder, and a failed start
      // is reported by the first call that awaits it, never as an unhandled rejection.
      ready.catch(() => {});
      let done = false;
      return {
        async *encode(pcm) {
          const bytes = await (await ready).encode(pcm);
          if (bytes.byteLength > 0) yield bytes;
        },
        async end() {
          done = true;
          return (await ready).end();
        },
        async cancel() {
          if (done) return;
          done = true;
          await (await ready.catch(() => undefined))?.cancel();
        },
      };
    },
    async encodeClip(pcm) {
      const encoder = await start(true);
      try {
        for (const chunk of pcm) await encoder.encode(chunk);
        return await encoder.end();
      } finally {
        await encoder.cancel();
      }
    },
  };
}

/** Whether the gateway can produce `encoding` at all (checked before routing). */
export function isSupportedEncoding(encoding: AudioEncoding): boolean {
  return (
    encoding === AudioEncoding.UNSPECIFIED ||
    encoding === AudioEncoding.WAV ||
    encoding === AudioEncoding.PCM ||
    encoding === AudioEncoding.MP3 ||
    COMPRESSED_FORMATS.has(encoding)
  );
}

/** The UNIMPLEMENTED message for an encoding the gateway has no encoder for. */
export function unsupportedMessage(encoding: AudioEncoding): string {
  return (
    `encoding ${AudioEncoding[encoding] ?? encoding} is not available: the gateway has no ` +
    "encoder for it; use WAV, PCM, MP3, OPUS, FLAC or AAC"
  );
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1 && parts[0]) return parts[0];
  return Buffer.concat(parts);
}
