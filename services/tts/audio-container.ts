import { setImmediate } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { AudioEncoding, type AudioFormat } from "../../gen/voxgate/v1/audio_pb.js";
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
   * that had no audio). Later calls return nothing.
   */
  end(): Uint8Array;
}

/**
 * Audio encoded to MP3 in one go before the encoder yields, in ms: about 5 to 20 ms of CPU at
 * 22050 Hz, so the first frames leave early and other calls wait little.
 */
export const MP3_SLICE_MS = 250;

/** Options of {@link chooseContainer}. */
export interface AudioContainerOptions {
  /** Constant MP3 bit rate, in kbit/s. @default 64 per channel (64 mono, 128 stereo) */
  mp3BitrateKbps?: number;
}

const EMPTY = new Uint8Array(0);

/**
 * Chooses the container for `encoding` given the backend's PCM `format`: WAV (a streaming header
 * first, or the exact header for a whole clip), raw PCM as it came, or MP3 encoded on the gateway.
 *
 * @throws ConnectError UNIMPLEMENTED for encodings without an encoder (FLAC, Opus) and for MP3 at
 *   a sample rate or channel count MP3 cannot carry; INTERNAL when the backend did not send
 *   16-bit PCM (a backend bug, not the caller's).
 */
export function chooseContainer(
  encoding: AudioEncoding,
  format: AudioFormat,
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
          parts.push(encoder.end());
          return concat(parts);
        },
      };
    }
    default:
      throw new ConnectError(unsupportedMessage(encoding), Code.Unimplemented);
  }
}

/** Whether the gateway can produce `encoding` at all (checked before routing). */
export function isSupportedEncoding(encoding: AudioEncoding): boolean {
  return (
    encoding === AudioEncoding.UNSPECIFIED ||
    encoding === AudioEncoding.WAV ||
    encoding === AudioEncoding.PCM ||
    encoding === AudioEncoding.MP3
  );
}

/** The UNIMPLEMENTED message for an encoding the gateway has no encoder for. */
export function unsupportedMessage(encoding: AudioEncoding): string {
  return (
    `encoding ${AudioEncoding[encoding] ?? encoding} is not available: the gateway has no ` +
    "encoder for it; use WAV, PCM or MP3"
  );
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1 && parts[0]) return parts[0];
  return Buffer.concat(parts);
}
