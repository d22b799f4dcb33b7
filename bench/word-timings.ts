/**
 * Word-timing benchmark: what asking espeak-ng for word timings (issue 19, `word_timings`) costs
 * the engine, per second of audio, against the same text without them. The built-in engine runs
 * in this process (one worker thread); CPU is the process's (`process.cpuUsage`, so the worker
 * counts). The audio is the same either way; the timings come from a second, slower run of each
 * sentence, so the cost is the engine's, not the gateway's.
 *
 *   node --import tsx bench/word-timings.ts [--reps N]
 *
 * Prints a table and one JSON line of figures.
 */
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import { createEspeakEngine } from "../services/engines/espeak/index.js";
import type { TtsEngine } from "../services/engines/tts-engine.js";
import { spread } from "./support/stats.js";

const { values } = parseArgs({ options: { reps: { type: "string" } } });
const reps = Number(values.reps ?? 5);

/** Six sentences of narration, about 25 s of audio at espeak-ng's default rate. */
const TEXT = [
  "The lighthouse keeper counted the ships as they passed, one by one, until the fog came in.",
  "Rain moved across the bay in long grey curtains, and the harbour bells rang twice.",
  "Nobody remembered who had planted the old pear tree behind the chapel.",
  "At dawn the market filled with voices and the smell of fresh bread.",
  "She folded the map twice, put it in her coat, and walked down to the pier.",
  "By noon the boats were back, their nets heavy with silver fish.",
].join(" ");

interface Run {
  wallMs: number;
  cpuMs: number;
  audioSeconds: number;
  words: number;
  /** sha256 of the audio, to show timings leave it unchanged. */
  digest: string;
}

async function speak(engine: TtsEngine, wordTimings: boolean): Promise<Run> {
  const { sampleRateHz, channels } = engine.info.format;
  const cpuBefore = process.cpuUsage();
  const began = performance.now();
  let bytes = 0;
  let words = 0;
  const hash = createHash("sha256");
  for await (const chunk of engine.synthesize(
    { text: TEXT, voiceId: "", speed: 1, instructions: "", wordTimings },
    new AbortController().signal,
  )) {
    bytes += chunk.pcm.byteLength;
    hash.update(chunk.pcm);
    words += chunk.words?.length ?? 0;
  }
  const wallMs = performance.now() - began;
  const cpu = process.cpuUsage(cpuBefore);
  return {
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    audioSeconds: bytes / (sampleRateHz * channels * 2),
    words,
    digest: hash.digest("hex"),
  };
}

const engine = await createEspeakEngine({ workers: 1 });
try {
  // Warm both paths once (voice data, JIT) before measuring.
  await speak(engine, false);
  await speak(engine, true);
  const runs: Record<"off" | "on", Run[]> = { off: [], on: [] };
  for (let rep = 0; rep < reps; rep++) {
    // Alternate, so drift in the machine's load touches both alike.
    runs.off.push(await speak(engine, false));
    runs.on.push(await speak(engine, true));
  }
  const rows = (["off", "on"] as const).map((mode) => {
    const list = runs[mode];
    const audioSeconds = list[0]?.audioSeconds ?? 0;
    const cpu = spread(list.map((r) => r.cpuMs / r.audioSeconds));
    const wall = spread(list.map((r) => r.wallMs));
    return {
      wordTimings: mode,
      audioSeconds: Number(audioSeconds.toFixed(2)),
      words: list[0]?.words ?? 0,
      wallMsMedian: Math.round(wall.median),
      cpuMsPerAudioSecond: Number(cpu.median.toFixed(1)),
      min: Number(cpu.min.toFixed(1)),
      max: Number(cpu.max.toFixed(1)),
    };
  });
  const [off, on] = rows;
  const ratio = off && on ? on.cpuMsPerAudioSecond / off.cpuMsPerAudioSecond : Number.NaN;
  const sameAudio = new Set([...runs.off, ...runs.on].map((r) => r.digest)).size === 1;
  console.table(rows);
  console.log(`audio identical with and without timings: ${sameAudio}`);
  console.log(`word timings cost ${ratio.toFixed(2)} × the engine CPU of the same text without`);
  console.log(
    JSON.stringify({
      bench: "word-timings",
      reps,
      rows,
      cpuRatio: Number(ratio.toFixed(2)),
      sameAudio,
    }),
  );
} finally {
  await engine.close();
}
