/**
 * Probes (ffprobe: codec, container, rate, channels) and decodes (ffmpeg) audio of any format, an
 * independent decoder for the format tests (`decodeWithFfmpeg` in ffmpeg-decode.ts only decodes).
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** What ffmpeg made of a file. */
export interface DecodedAudio {
  /** Codec name as ffprobe says it, e.g. `opus`, `flac`, `aac`, `mp3`, `pcm_s16le`. */
  codec: string;
  /** Container name as ffprobe says it, e.g. `ogg`, `flac`, `aac`, `wav`. */
  container: string;
  /** Sample rate of the stream, in Hz. */
  sampleRateHz: number;
  /** Channels of the stream. */
  channels: number;
  /** Decoded audio as interleaved s16le at `sampleRateHz`. */
  pcm: Uint8Array;
  /** Playing time of the decoded audio, in ms. */
  durationMs: number;
}

/**
 * Decodes `bytes` (any container ffmpeg knows; `inputFormat` forces one, e.g. `s16le` with
 * `rawRateHz` for headerless PCM) to 16-bit PCM at the stream's own rate.
 */
export async function probeAndDecode(
  bytes: Uint8Array,
  options: { inputFormat?: string; rawRateHz?: number; rawChannels?: number } = {},
): Promise<DecodedAudio> {
  const dir = await mkdtemp(join(tmpdir(), "voxgate-decode-"));
  try {
    const file = join(dir, "input");
    await writeFile(file, bytes);
    const input = options.inputFormat
      ? [
          "-f",
          options.inputFormat,
          ...(options.rawRateHz ? ["-ar", String(options.rawRateHz)] : []),
          ...(options.rawChannels ? ["-ac", String(options.rawChannels)] : []),
          "-i",
          file,
        ]
      : ["-i", file];
    const probe = await run(
      "ffprobe",
      [
        "-v",
        "error",
        "-show_entries",
        "stream=codec_name,sample_rate,channels:format=format_name",
        "-of",
        "json",
        ...input,
      ],
      { maxBuffer: 1 << 20 },
    );
    const info = JSON.parse(probe.stdout) as {
      streams: { codec_name: string; sample_rate: string; channels: number }[];
      format: { format_name: string };
    };
    const stream = info.streams[0];
    if (!stream) throw new Error("ffprobe found no audio stream");
    const decoded = await run(
      "ffmpeg",
      ["-v", "error", "-nostdin", ...input, "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1"],
      { encoding: "buffer", maxBuffer: 256 << 20 },
    );
    const pcm = new Uint8Array(decoded.stdout);
    const sampleRateHz = Number(stream.sample_rate);
    return {
      codec: stream.codec_name,
      container: info.format.format_name,
      sampleRateHz,
      channels: stream.channels,
      pcm,
      durationMs: (pcm.byteLength / (2 * stream.channels) / sampleRateHz) * 1000,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
