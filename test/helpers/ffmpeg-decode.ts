import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** PCM that ffmpeg decoded, at the stream's own rate and channel count. */
export interface FfmpegDecoded {
  /** Signed 16-bit samples, interleaved. */
  samples: Int16Array;
  /** Samples per channel. */
  frames: number;
}

/**
 * Decodes audio bytes with the ffmpeg CLI (an independent decoder that reads the LAME Info
 * frame's delay and padding, as players do) to 16-bit PCM. The bytes go through a temporary
 * file: from a pipe, ffmpeg 5.1 skips the encoder delay but keeps the end padding.
 * Rejects with ffmpeg's message when it fails.
 */
export async function decodeWithFfmpeg(
  bytes: Uint8Array,
  channels: number,
): Promise<FfmpegDecoded> {
  const dir = await mkdtemp(join(tmpdir(), "voxgate-ffmpeg-"));
  try {
    const input = join(dir, "input");
    await writeFile(input, bytes);
    const pcm = await new Promise<Buffer>((resolve, reject) => {
      const child = spawn(
        "ffmpeg",
        ["-v", "error", "-nostdin", "-i", input, "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1"],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on("data", (d: Buffer) => out.push(d));
      child.stderr.on("data", (d: Buffer) => err.push(d));
      child.on("error", reject);
      child.on("close", (code) => {
        if (code === 0) resolve(Buffer.concat(out));
        else reject(new Error(`ffmpeg exited ${code}: ${Buffer.concat(err).toString()}`));
      });
    });
    // A copy: a pooled Buffer may start at an odd offset, which an Int16Array cannot view.
    const samples = new Int16Array(new Uint8Array(pcm).buffer);
    return { samples, frames: samples.length / channels };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
