/**
 * Audio codec benchmark: gateway CPU per second of audio for each encoder (MP3, Ogg Opus, FLAC,
 * AAC) and for the resampler, fed as a stream arrives (0.1 s chunks of a speech-like signal), and
 * for a render job's output in each format: segments of two engine rates (22050 and 16000 Hz)
 * joined from the filesystem store, the 16 kHz ones resampled, encoded and stored (what the render
 * executor's `writeJoinedOutput` does after synthesis).
 * CPU is the process's (`process.cpuUsage`, so the FLAC and AAC worker threads count), measured on
 * a warm codec; the first stream's cost (WASM compile, worker start) is reported apart.
 *
 *   node --import tsx bench/audio-codecs.ts [--reps N] [--seconds S]
 *
 * Prints a table and one JSON line of figures.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { interleave, syllableTrain, toInt16 } from "../services/analysis/test-signals.js";
import { createCompressedEncoder } from "../services/audio/compressed-encoder.js";
import { createMp3Encoder } from "../services/audio/mp3-encoder.js";
import { loadResamplerFactory } from "../services/audio/resampler.js";
import {
  type JoinPart,
  renderOutputRate,
  writeJoinedOutput,
} from "../services/jobs/executors/render-output.js";
import type { RenderFormat } from "../services/jobs/executors/render-plan.js";
import { createFsBlobStore } from "../services/object-store/fs-blob-store.js";
import { spread } from "./support/stats.js";

const { values } = parseArgs({
  options: { reps: { type: "string" }, seconds: { type: "string" } },
});
const reps = Number(values.reps ?? 3);
const seconds = Number(values.seconds ?? 20);

/** Speech-like PCM: 150 ms harmonic syllables at 120 Hz with 100 ms quieter gaps, as s16le. */
function speechLike(sampleRateHz: number, channels: number): Uint8Array {
  const mono = syllableTrain(120, sampleRateHz, seconds, 150, 100);
  const samples = toInt16(channels === 1 ? mono : interleave(mono, mono));
  return new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
}

function chunks(pcm: Uint8Array, rateHz: number, channels: number): Uint8Array[] {
  const size = Math.round(rateHz / 10) * channels * 2;
  const out: Uint8Array[] = [];
  for (let offset = 0; offset < pcm.byteLength; offset += size) {
    out.push(pcm.subarray(offset, offset + size));
  }
  return out;
}

/** CPU ms of one run of `work`. */
async function cpuMs(work: () => Promise<void>): Promise<number> {
  const before = process.cpuUsage();
  await work();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

type Case = {
  name: string;
  rateHz: number;
  channels: number;
  /** What the input column shows, when not `<rate> Hz mono|stereo`. */
  label?: string;
  run: (c: Uint8Array[]) => Promise<void>;
};
const cases: Case[] = [];
for (const [rateHz, channels] of [
  [22_050, 1],
  [24_000, 1],
  [48_000, 2],
] as const) {
  cases.push({
    name: "mp3",
    rateHz,
    channels,
    run: async (input) => {
      const mp3 = createMp3Encoder({ sampleRateHz: rateHz, channels });
      for (const chunk of input) mp3.encode(chunk);
      mp3.flush();
    },
  });
  for (const format of ["opus", "flac", "aac"] as const) {
    cases.push({
      name: format,
      rateHz,
      channels,
      run: async (input) => {
        const encoder = await createCompressedEncoder({ format, sampleRateHz: rateHz, channels });
        for (const chunk of input) await encoder.encode(chunk);
        await encoder.end();
      },
    });
  }
}
const resamplers = await loadResamplerFactory();
for (const [fromHz, toHz, channels] of [
  [22_050, 24_000, 1],
  [22_050, 48_000, 1],
  [24_000, 16_000, 1],
  [48_000, 44_100, 2],
] as const) {
  cases.push({
    name: `resample to ${toHz}`,
    rateHz: fromHz,
    channels,
    run: async (input) => {
      const resampler = resamplers.create({ fromHz, toHz, channels });
      for (const chunk of input) resampler.push(chunk);
      resampler.end();
    },
  });
}

// Render outputs: four segments, alternately from a 22050 Hz and a 16000 Hz engine, stored as
// the executor stores them, joined at the first segment's rate (no pauses: every second counted
// is speech).
const storeDir = await mkdtemp(join(tmpdir(), "voxgate-bench-render-"));
const blobs = createFsBlobStore({ rootDir: storeDir });
const parts: JoinPart[] = [];
const segmentRates = [22_050, 16_000, 22_050, 16_000];
for (const [index, rateHz] of segmentRates.entries()) {
  const pcm = speechLike(rateHz, 1).subarray(0, Math.round((rateHz * seconds) / 4) * 2);
  await blobs.put(`segments/${index}.pcm`, pcm, { contentType: "application/octet-stream" });
  parts.push({
    key: `segments/${index}.pcm`,
    sizeBytes: pcm.byteLength,
    sampleRateHz: rateHz,
    silenceFrames: 0,
  });
}
for (const format of ["wav", "mp3", "opus", "flac", "aac"] as const satisfies RenderFormat[]) {
  const outputHz = await renderOutputRate(format, 22_050);
  cases.push({
    name: `render ${format}`,
    rateHz: outputHz,
    channels: 1,
    label: `22050 + 16000 Hz → ${outputHz} Hz`,
    run: async () => {
      await writeJoinedOutput({
        blobs,
        key: `output.${format}`,
        parts,
        layout: { sampleRateHz: outputHz, channels: 1 },
        format,
        signal: new AbortController().signal,
      });
    },
  });
}

const rows: Record<string, number | string>[] = [];
for (const c of cases) {
  const input = c.label ? [] : chunks(speechLike(c.rateHz, c.channels), c.rateHz, c.channels);
  const first = await cpuMs(() => c.run(input));
  const runs: number[] = [];
  for (let i = 0; i < reps; i++) runs.push((await cpuMs(() => c.run(input))) / seconds);
  const warm = spread(runs);
  rows.push({
    codec: c.name,
    input: c.label ?? `${c.rateHz} Hz ${c.channels === 1 ? "mono" : "stereo"}`,
    cpuMsPerAudioSecond: warm.median,
    min: warm.min,
    max: warm.max,
    firstStreamExtraMs: Math.round(first - warm.median * seconds),
  });
}
await blobs.close();
await rm(storeDir, { recursive: true, force: true });
console.table(rows);
console.log(JSON.stringify({ bench: "audio-codecs", reps, seconds, rows }));
process.exit(0);
