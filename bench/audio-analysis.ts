/**
 * Audio-analysis benchmark: CPU time (ms) of `analyzePcm` (loudness, pitch, gender) on 60 s of audio
 * at 22050 Hz mono and 48 kHz stereo, and the longest event-loop stall while `analyzeAudio` runs
 * the same work in its worker thread.
 *
 *   node --import tsx bench/audio-analysis.ts [--reps N]
 *
 * Prints a table and one JSON line of figures.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { AnalysisKind } from "../gen/voxgate/v1/analysis_pb.js";
import { analyzeAudio } from "../services/analysis/analyze-audio.js";
import { analyzePcm, type PcmAudio } from "../services/analysis/audio-analysis.js";
import { interleave, syllableTrain, toInt16 } from "../services/analysis/test-signals.js";

const { values } = parseArgs({ options: { reps: { type: "string" } } });
const reps = Number(values.reps ?? 3);

// Speech-like: 60 s of 150 ms harmonic syllables at 120 Hz with 100 ms quieter gaps.
function speechLike(sampleRateHz: number, channels: number): PcmAudio {
  const mono = syllableTrain(120, sampleRateHz, 240, 150, 100);
  const signal = channels === 1 ? mono : interleave(mono, mono);
  return { samples: toInt16(signal), sampleRateHz, channels };
}

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

const rows: Record<string, number | string>[] = [];
for (const [rate, channels] of [
  [22_050, 1],
  [48_000, 2],
] as const) {
  const pcm = speechLike(rate, channels);
  const time = (kinds: AnalysisKind[]): number => {
    const runs: number[] = [];
    for (let i = 0; i < reps; i++) {
      // CPU time, not wall time: other work on the machine does not inflate it.
      const started = process.cpuUsage();
      analyzePcm(pcm, kinds);
      const used = process.cpuUsage(started);
      runs.push((used.user + used.system) / 1000);
    }
    return median(runs);
  };
  const basicMs = time([AnalysisKind.BASIC]);
  const pitchMs = time([AnalysisKind.PITCH]);
  const allMs = time([]);

  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  const started = performance.now();
  await analyzeAudio(pcm, []);
  const workerMs = performance.now() - started;
  delay.disable();
  rows.push({
    audio: `60 s ${rate} Hz x${channels}`,
    basicCpuMs: Math.round(basicMs),
    pitchCpuMs: Math.round(pitchMs),
    allCpuMs: Math.round(allMs),
    workerWallMs: Math.round(workerMs),
    maxLoopStallMs: Math.round(delay.max / 1e6),
  });
}
console.table(rows);
console.log(JSON.stringify({ bench: "audio-analysis", reps, rows }));
