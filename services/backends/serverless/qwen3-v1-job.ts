/**
 * The job format of the predecessor's Qwen3-TTS RunPod worker (`server/runpod_handler.py` of
 * `decay256/qwen3-tts-server`): input `{endpoint, method, body, api_key}` naming one of its routes,
 * output the route's JSON: `{audio (base64 WAV), duration_s, format}` for audio, `{error}` on
 * failure (with the job itself COMPLETED).
 */
import { parseWav } from "../../audio/wav.js";
import { TtsJobOutputError } from "./tts-job.js";

/** The job input of a call to `endpoint` with `body`. */
export function qwen3V1Input(
  endpoint: string,
  body: Record<string, unknown>,
  apiKey: string,
): Record<string, unknown> {
  return { endpoint, method: "POST", body, ...(apiKey ? { api_key: apiKey } : {}) };
}

/** Whether a worker's output says the named clone prompt is not in its store. */
export function isPromptMissing(output: Record<string, unknown> | undefined): boolean {
  return typeof output?.error === "string" && /prompt .*not found/i.test(output.error);
}

/** Decodes the worker's `{audio}` output (base64 WAV) to PCM with the WAV's own format. */
export function decodeQwen3V1Output(
  output: Record<string, unknown> | undefined,
  maxAudioBytes: number,
): { pcm: Uint8Array; sampleRateHz: number; channels: number } {
  const encoded = output?.audio;
  if (typeof encoded !== "string" || encoded === "") {
    throw new TtsJobOutputError(
      "the worker's output has no audio (expected {audio, duration_s, format})",
    );
  }
  if ((encoded.length * 3) / 4 > maxAudioBytes + 1024) {
    throw new TtsJobOutputError(`the worker's audio passes ${maxAudioBytes} bytes (maxAudioBytes)`);
  }
  const wav = Buffer.from(encoded, "base64");
  let info: ReturnType<typeof parseWav>;
  try {
    info = parseWav(wav);
  } catch (err) {
    throw new TtsJobOutputError(`the worker's audio is not a WAV file: ${(err as Error).message}`);
  }
  if (info.bitsPerSample !== 16) {
    throw new TtsJobOutputError(
      `the worker sent ${info.bitsPerSample}-bit audio; voxgate takes 16-bit PCM`,
    );
  }
  return {
    pcm: wav.subarray(info.dataOffset, info.dataOffset + info.dataBytes),
    sampleRateHz: info.sampleRateHz,
    channels: info.channels,
  };
}
