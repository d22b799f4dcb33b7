/**
 * An Opus encoder for mediabunny's Ogg muxer, over `opusscript` (libopus 1.4 compiled to WASM,
 * MIT wrapper, libopus BSD-3-Clause): Node has no WebCodecs, so mediabunny needs a custom coder.
 */
import { type AudioSample, CustomAudioEncoder, EncodedPacket } from "mediabunny";
import OpusScript from "opusscript";

/** Sample rates libopus takes as input, in Hz. */
export const OPUS_SAMPLE_RATES_HZ: readonly number[] = [8000, 12000, 16000, 24000, 48000];

/** Opus frame length used: 20 ms, the libopus default and the best size for speech. */
const FRAME_MS = 20;
/**
 * libopus's encoder delay (OPUS_APPLICATION_AUDIO), in 48 kHz samples: the pre-skip a decoder
 * drops so that output sample 0 is input sample 0 (2.5 ms of overlap + 4 ms of lookahead).
 */
const PRE_SKIP_48K = 312;

/**
 * Encodes interleaved 16-bit PCM into 20 ms Opus packets. The last packet is padded with silence
 * and carries its real duration, so the Ogg muxer trims the padding (end granule position).
 */
export class OpusPacketEncoder extends CustomAudioEncoder {
  #opus: OpusScript | undefined;
  #frameSamples = 0;
  #pending = new Int16Array(0);
  #framesOut = 0;

  /** Whether this encoder takes `codec` at `config`'s rate and channel count. */
  static override supports(
    codec: string,
    config: { sampleRate: number; numberOfChannels: number },
  ) {
    return (
      codec === "opus" &&
      OPUS_SAMPLE_RATES_HZ.includes(config.sampleRate) &&
      (config.numberOfChannels === 1 || config.numberOfChannels === 2)
    );
  }

  /** Creates the libopus encoder at the configured rate, channels and bit rate. */
  override init(): void {
    const rate = this.config.sampleRate as 8000 | 12000 | 16000 | 24000 | 48000;
    this.#opus = new OpusScript(rate, this.config.numberOfChannels, OpusScript.Application.AUDIO);
    if (this.config.bitrate) this.#opus.setBitrate(this.config.bitrate);
    this.#frameSamples = (rate * FRAME_MS) / 1000;
  }

  /** Buffers the sample's PCM and encodes every whole 20 ms frame. */
  override encode(sample: AudioSample): void {
    const channels = this.config.numberOfChannels;
    const samples = new Int16Array(sample.numberOfFrames * channels);
    sample.copyTo(samples, { planeIndex: 0, format: "s16" });
    const all = new Int16Array(this.#pending.length + samples.length);
    all.set(this.#pending);
    all.set(samples, this.#pending.length);
    const frameLength = this.#frameSamples * channels;
    let offset = 0;
    for (; all.length - offset >= frameLength; offset += frameLength) {
      this.#emit(all.subarray(offset, offset + frameLength), this.#frameSamples);
    }
    this.#pending = all.slice(offset);
  }

  /**
   * Encodes the buffered rest. The encoder's delay holds the last input back by the pre-skip, so
   * that much silence follows it; the last packet's duration then ends the stream exactly at the
   * last input sample (a decoder drops the pre-skip at the start and the rest of the last frame).
   */
  override flush(): void {
    const channels = this.config.numberOfChannels;
    const delay = (PRE_SKIP_48K * this.config.sampleRate) / 48000;
    const rest = this.#pending.length / channels + delay;
    const padded = new Int16Array(
      Math.ceil(rest / this.#frameSamples) * this.#frameSamples * channels,
    );
    padded.set(this.#pending);
    const frameLength = this.#frameSamples * channels;
    for (let offset = 0; offset < padded.length; offset += frameLength) {
      const left = rest - offset / channels;
      this.#emit(padded.subarray(offset, offset + frameLength), Math.min(this.#frameSamples, left));
    }
    this.#pending = new Int16Array(0);
  }

  /** Frees the libopus state. */
  override close(): void {
    this.#opus?.delete();
    this.#opus = undefined;
  }

  #emit(frame: Int16Array, realFrames: number): void {
    const opus = this.#opus;
    if (!opus) throw new Error("the Opus encoder is closed");
    const rate = this.config.sampleRate;
    const packet = opus.encode(
      Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength),
      this.#frameSamples,
    );
    const first = this.#framesOut === 0;
    const encoded = new EncodedPacket(
      new Uint8Array(packet),
      "key",
      this.#framesOut / rate,
      realFrames / rate,
    );
    this.#framesOut += this.#frameSamples;
    this.onPacket(
      encoded,
      first
        ? {
            decoderConfig: {
              codec: "opus",
              sampleRate: 48000,
              numberOfChannels: this.config.numberOfChannels,
              description: opusHead(this.config.numberOfChannels, rate),
            },
          }
        : undefined,
    );
  }
}

/** The Ogg Opus identification header (RFC 7845 §5.1), channel mapping family 0. */
function opusHead(channels: number, inputRateHz: number): Uint8Array {
  const head = new Uint8Array(19);
  const view = new DataView(head.buffer);
  head.set(new TextEncoder().encode("OpusHead"));
  head[8] = 1; // version
  head[9] = channels;
  view.setUint16(10, PRE_SKIP_48K, true);
  view.setUint32(12, inputRateHz, true);
  view.setInt16(16, 0, true); // output gain
  head[18] = 0; // mapping family: mono or stereo
  return head;
}
