/**
 * MP3 length, checked with an independent decoder (the ffmpeg CLI). Issue 13 allows ±20 ms
 * between the audio voxgate was asked to encode and the decoded MP3; before the LAME Info frame
 * a render decoded 52 to 78 ms long at 22.05 kHz (LAME's 576-sample delay, the decoder's 529 and
 * the last frame's padding). Whenever the length is known before encoding (a render's joined
 * output, a whole clip) the MP3 now carries the Info frame, and ffmpeg plays exactly the input.
 * A live stream cannot: its behaviour is pinned here too, as the README documents it.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AudioEncoding, AudioFormatSchema } from "../../gen/voxgate/v1/audio_pb.js";
import { createMp3Encoder } from "../../services/audio/mp3-encoder.js";
import { writeJoinedOutput } from "../../services/jobs/executors/render-output.js";
import type { BlobStore } from "../../services/object-store/blob-store.js";
import { createFsBlobStore } from "../../services/object-store/fs-blob-store.js";
import { chooseContainer } from "../../services/tts/audio-container.js";
import { decodeWithFfmpeg } from "../helpers/ffmpeg-decode.js";

/** The tolerance between expected and decoded length, in ms. */
const TOLERANCE_MS = 20;

/** `frames` of silence, then a 440 Hz tone from frame `onset` on. */
function toneFrom(sampleRateHz: number, channels: number, frames: number, onset = 0): Uint8Array {
  const pcm = new Uint8Array(frames * channels * 2);
  const view = new DataView(pcm.buffer);
  for (let i = onset; i < frames; i++) {
    const s = Math.round(9000 * Math.sin((2 * Math.PI * 440 * (i - onset)) / sampleRateHz));
    for (let c = 0; c < channels; c++) view.setInt16((i * channels + c) * 2, s, true);
  }
  return pcm;
}

const ms = (frames: number, rate: number) => (frames / rate) * 1000;

describe("MP3 with a known length decodes to that length (ffmpeg)", () => {
  // A few lengths per format: the check, not a sweep (a sweep of 200 lengths per format
  // was run once by hand and decoded exact in every case but zero frames).
  const cases: Array<[rate: number, channels: number, seconds: number]> = [
    [22_050, 1, 0.5],
    [22_050, 1, 1.234],
    [22_050, 1, 3.7],
    [24_000, 1, 2.0],
    [16_000, 1, 0.77],
    [44_100, 2, 1.5],
    [48_000, 2, 0.3],
  ];
  it.each(cases)("%d Hz, %d channel(s), %d s", async (rate, channels, seconds) => {
    const frames = Math.round(rate * seconds);
    const onset = Math.round(frames / 3);
    const encoder = createMp3Encoder({ sampleRateHz: rate, channels, totalPcmFrames: frames });
    const pcm = toneFrom(rate, channels, frames, onset);
    const mp3 = Buffer.concat([encoder.encode(pcm), encoder.flush()]);
    const decoded = await decodeWithFfmpeg(mp3, channels);
    expect(Math.abs(ms(decoded.frames, rate) - ms(frames, rate))).toBeLessThanOrEqual(TOLERANCE_MS);
    // Exact in practice: the tag's delay and padding are LAME's own figures.
    expect(decoded.frames).toBe(frames);
    // And in time: the tone starts where it started (MP3's pre-echo reaches a few ms earlier),
    // which shows the delay removed is the encoder's real delay.
    const first = decoded.samples.findIndex((s) => Math.abs(s) > 3000);
    expect(Math.abs(ms(Math.floor(first / channels) - onset, rate))).toBeLessThanOrEqual(5);
  });
});

describe("the render output and whole clips carry the Info frame", () => {
  let dir = "";
  let blobs: BlobStore;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "voxgate-gapless-"));
    blobs = createFsBlobStore({ rootDir: dir });
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("a joined render (segments plus exact pauses) decodes to segments + pauses", async () => {
    const rate = 22_050;
    const segmentFrames = [9_001, 15_433, 4_410];
    const pauseFrames = [Math.round(0.25 * rate), Math.round(0.6 * rate), 0];
    const parts = [];
    for (const [i, frames] of segmentFrames.entries()) {
      const key = `seg-${i}`;
      const pcm = toneFrom(rate, 1, frames);
      await blobs.put(key, pcm, { contentType: "application/octet-stream" });
      parts.push({ key, sizeBytes: pcm.byteLength, silenceFrames: pauseFrames[i] ?? 0 });
    }
    const output = await writeJoinedOutput({
      blobs,
      key: "out.mp3",
      parts,
      layout: { sampleRateHz: rate, channels: 1 },
      format: "mp3",
      signal: new AbortController().signal,
    });
    const chunks: Uint8Array[] = [];
    for await (const chunk of await blobs.get("out.mp3")) chunks.push(chunk);
    const decoded = await decodeWithFfmpeg(Buffer.concat(chunks), 1);
    const expected = [...segmentFrames, ...pauseFrames].reduce((a, b) => a + b, 0);
    expect(output.durationMs).toBe(Math.round(ms(expected, rate)));
    expect(Math.abs(ms(decoded.frames - expected, rate))).toBeLessThanOrEqual(TOLERANCE_MS);
    expect(decoded.frames).toBe(expected);
  });

  it("a whole MP3 clip decodes to its PCM; a stream of the same PCM plays delay and padding", async () => {
    const rate = 24_000;
    const frames = 31_337;
    const pcm = toneFrom(rate, 1, frames);
    const container = chooseContainer(
      AudioEncoding.MP3,
      create(AudioFormatSchema, { encoding: AudioEncoding.PCM, sampleRateHz: rate, channels: 1 }),
    );
    const clip = await container.encodeClip([pcm], pcm.byteLength);
    expect((await decodeWithFfmpeg(clip, 1)).frames).toBe(frames);

    const stream = container.createStreamEncoder();
    const pieces: Uint8Array[] = [];
    const encoded = stream.encode(pcm);
    if (Symbol.asyncIterator in encoded) for await (const p of encoded) pieces.push(p);
    else pieces.push(...encoded);
    pieces.push(await stream.end());
    const streamed = await decodeWithFfmpeg(Buffer.concat(pieces), 1);
    // No Info frame: LAME's 576-sample delay and 576 to 1151 samples of padding (576-sample
    // frames at 24 kHz) are played too, 48 to 72 ms here; the README states it.
    const extra = streamed.frames - frames;
    expect(extra).toBeGreaterThanOrEqual(576 + 576);
    expect(extra).toBeLessThan(576 + 576 + 576);
  });
});
