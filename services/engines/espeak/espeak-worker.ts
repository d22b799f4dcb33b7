/**
 * Body of an espeak-ng worker thread, started through `services/worker/ts-worker-entry.mjs`.
 *
 * espeak-ng is GPL-3.0, so this is the only module that loads it, and only through a dynamic
 * `import()` in a worker thread: nothing in voxgate imports it statically. The npm build is the
 * Emscripten-compiled command-line program; each sentence is one run of its `main()` with
 * `-w <file>` in a long-lived instance whose memory is reset between runs, and the WAV file is
 * read back from the instance's in-memory file system.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { TextEncoder } from "node:util";
import { parentPort, workerData } from "node:worker_threads";
import { parseWav } from "../../audio/wav.js";
import type {
  EspeakProsody,
  EspeakSynthesizeMessage,
  EspeakWorkerData,
  EspeakWorkerMessage,
} from "./espeak-protocol.js";
import { alignWords, measuredShares, measuringSsml } from "./word-alignment.js";

// The tsconfig has no DOM lib, so the WebAssembly global is untyped; this is the slice used here.
interface WasmModule {
  readonly wasmModuleBrand: unique symbol;
}
interface WasmInstance {
  exports: unknown;
}
interface WasmApi {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  instantiate(module: WasmModule, imports: unknown): Promise<WasmInstance>;
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

// Exports of espeak-ng.wasm used to pass argv to main() and to reset the memory.
interface EspeakWasmExports {
  memory: { buffer: ArrayBuffer };
  __emscripten_embedded_file_data?: { value: number };
  stackSave(): number;
  stackRestore(pointer: number): void;
  stackAlloc(bytes: number): number;
}

// The Emscripten module object of the npm build (MODULARIZE + EXPORT_ES6, FS exported).
interface EspeakModule {
  FS: {
    writeFile(path: string, data: string): void;
    readFile(path: string): Uint8Array;
    unlink(path: string): void;
  };
  _main(argc: number, argv: number): number;
}
interface EspeakModuleArgs {
  noInitialRun: boolean;
  print(line: string): void;
  printErr(line: string): void;
  instantiateWasm(
    imports: unknown,
    done: (instance: WasmInstance, module: WasmModule) => void,
  ): object;
}
type EspeakFactory = (args: EspeakModuleArgs) => Promise<EspeakModule>;

interface RunOptions {
  args: string[];
  /** Written to {@link TEXT_PATH} before the run. */
  text?: string;
}
interface RunResult {
  status: number;
  stdout: string[];
  stderr: string[];
  /** Content of {@link WAV_PATH} after the run, if espeak-ng wrote it. */
  wav: Uint8Array | undefined;
}

// One Emscripten instance of the espeak-ng program.
interface EspeakInstance {
  /** Runs main() once from the instance's initial state; throws only when the instance aborts. */
  run(options: RunOptions): RunResult;
}

const TEXT_PATH = "/voxgate-input.txt";
const WAV_PATH = "/voxgate-output.wav";
const PROGRAM_NAME = "espeak-ng";
const WARM_UP_TEXT = "The quick brown fox jumps over the lazy dog, twice.";
const WARM_UP_RUNS = 3;
// Emscripten reports exit() from main() on stderr; it is noise for an exit we expect.
const EXIT_NOTICE = /^program exited \(with status: \d+\)/;

if (parentPort === null) {
  throw new Error("espeak-worker must run in a worker thread");
}
const port = parentPort;
const data = workerData as EspeakWorkerData;
const post = (message: EspeakWorkerMessage, transfer: ArrayBuffer[] = []): void => {
  port.postMessage(message, transfer);
};

const startedAt = performance.now();
const factory = await loadFactory(data.packageName);
if (factory !== undefined) {
  await serve(factory);
}

async function loadFactory(packageName: string): Promise<EspeakFactory | undefined> {
  try {
    const loaded = (await import(packageName)) as { default: EspeakFactory };
    return loaded.default;
  } catch (err) {
    // Only the package itself missing counts as "not installed"; a broken install is an error.
    const { code, message } = err as { code?: unknown; message?: unknown };
    if (
      code === "ERR_MODULE_NOT_FOUND" &&
      typeof message === "string" &&
      message.includes(`'${packageName}'`)
    ) {
      post({ type: "unavailable", message });
      return undefined;
    }
    throw err;
  }
}

async function serve(factory: EspeakFactory): Promise<void> {
  // Compiled once, so that replacing an instance after an abort skips the 18 MB compilation.
  const modulePath = createRequire(import.meta.url).resolve(data.packageName);
  const wasmBytes = await readFile(new URL("espeak-ng.wasm", pathToFileURL(modulePath)));
  const wasmModule = await wasm.compile(wasmBytes);
  const program = createProgram(() => createInstance(factory, wasmModule));

  const probe = await program.run(synthesisArgs(WARM_UP_TEXT, "en-us", 175));
  const format = parseWav(checkedWav(probe));
  if (format.bitsPerSample !== 16) {
    throw new Error(`espeak-ng wrote ${format.bitsPerSample}-bit audio, expected 16-bit`);
  }
  // V8 starts wasm on its baseline compiler and tiers hot functions up as they run: the first
  // sentences take 2-7 times longer. Pay for that here rather than in the first caller's latency.
  for (let i = 1; i < WARM_UP_RUNS; i++) {
    checkedWav(await program.run(synthesisArgs(WARM_UP_TEXT, "en-us", 175)));
  }
  let introspection: { version: string; voiceTable: string[] } | undefined;
  if (data.introspect) {
    const versionRun = await program.run({ args: ["--version"] });
    const version = /text-to-speech:\s*(\S+)/.exec(versionRun.stdout.join("\n"))?.[1];
    const voiceTable = (await program.run({ args: ["--voices"] })).stdout;
    introspection = { version: version ?? "unknown", voiceTable };
  }
  post({
    type: "ready",
    sampleRateHz: format.sampleRateHz,
    channels: format.channels,
    startupMs: performance.now() - startedAt,
    ...introspection,
  });

  // The engine sends a worker one sentence at a time; chaining still keeps runs strictly serial
  // should a run have to wait for a replacement instance.
  let previous = Promise.resolve();
  port.on("message", (message: EspeakSynthesizeMessage) => {
    previous = previous.then(() => handle(program, message));
  });
}

async function handle(program: EspeakProgram, message: EspeakSynthesizeMessage): Promise<void> {
  const started = performance.now();
  try {
    const result = await program.run(
      synthesisArgs(message.text, message.voice, message.wordsPerMinute, message.prosody),
    );
    const wav = checkedWav(result);
    const info = parseWav(wav);
    const pcm = wav.slice(info.dataOffset, info.dataOffset + info.dataBytes).buffer;
    const wordSpansMs =
      message.words === undefined
        ? undefined
        : await timeWords(program, message, new Int16Array(pcm), info.sampleRateHz);
    post(
      {
        type: "audio",
        jobId: message.jobId,
        pcm,
        synthesisMs: performance.now() - started,
        ...(wordSpansMs ? { wordSpansMs } : {}),
      },
      [pcm],
    );
  } catch (err) {
    post({ type: "failed", jobId: message.jobId, message: (err as Error).message });
  }
}

/**
 * Times the words of a sentence whose audio is `real`: a second run with breaks between the words
 * shows their lengths, which are laid onto `real` (see word-alignment.ts).
 */
async function timeWords(
  program: EspeakProgram,
  message: EspeakSynthesizeMessage,
  real: Int16Array,
  sampleRateHz: number,
): Promise<number[]> {
  const tokens = message.words ?? [];
  const words = tokens.map((token) => ({ word: token, token, textOffset: 0 }));
  let shares = words.map(() => 1);
  if (tokens.length > 1) {
    const run = synthesisArgs(
      measuringSsml(tokens),
      message.voice,
      message.wordsPerMinute,
      message.prosody,
    );
    // -m: the text is SSML.
    const bytes = checkedWav(await program.run({ ...run, args: ["-m", ...run.args] }));
    const measured = parseWav(bytes);
    const samples = bytes.slice(measured.dataOffset, measured.dataOffset + measured.dataBytes);
    shares = measuredShares(new Int16Array(samples.buffer), sampleRateHz, words);
  }
  // espeak-ng's pauses inside a clause stay under ~90 ms at 80 wpm; clause pauses are 150 ms and
  // more at 175 wpm, and scale with the rate.
  const pauseMs = Math.min(250, Math.max(40, (100 * 175) / message.wordsPerMinute));
  return alignWords(real, sampleRateHz, shares, pauseMs).flatMap((w) => [w.startMs, w.endMs]);
}

function synthesisArgs(
  text: string,
  voice: string,
  wordsPerMinute: number,
  prosody?: EspeakProsody,
): RunOptions {
  // Text goes through a file rather than argv, so text such as "-v fr" is never read as an option.
  const args = ["-b", "1", "-v", voice, "-s", String(wordsPerMinute), "-w", WAV_PATH];
  if (prosody !== undefined) {
    args.push("-p", String(prosody.pitch), "-P", String(prosody.pitchRange));
  }
  return { args: [...args, "-f", TEXT_PATH], text };
}

function checkedWav(result: RunResult): Uint8Array {
  if (result.status !== 0 || result.wav === undefined) {
    const detail = result.stderr.join(" ") || "no output file";
    throw new Error(`espeak-ng exited with status ${result.status}: ${detail}`);
  }
  return result.wav;
}

interface EspeakProgram {
  run(options: RunOptions): Promise<RunResult>;
}

// Runs espeak-ng's main() repeatedly in one instance. A fresh instance costs ~300 ms (it unpacks
// the voice data into its file system) against ~20 ms for a sentence, but plain reuse is wrong:
// main() leaves state behind (musl getopt's `optind`, so the next run ignores its options; the
// rand() seed, so the audio drifts; leaks on error paths, in a memory that cannot grow). So each
// run starts from a copy of the memory taken before the first one (~1 ms to restore), which makes
// it behave exactly like a run in a fresh instance. An instance that aborts is replaced.
function createProgram(newInstance: () => Promise<EspeakInstance>): EspeakProgram {
  let instance: Promise<EspeakInstance> | undefined;
  return {
    async run(options) {
      instance ??= newInstance();
      try {
        return (await instance).run(options);
      } catch (err) {
        // Failed to start or aborted: the next run starts over with a new instance.
        instance = undefined;
        throw err;
      }
    },
  };
}

async function createInstance(
  factory: EspeakFactory,
  wasmModule: WasmModule,
): Promise<EspeakInstance> {
  let exports: EspeakWasmExports | undefined;
  let stdout: string[] = [];
  let stderr: string[] = [];
  let failed: ((err: unknown) => void) | undefined;
  const instantiateFailed = new Promise<never>((_, reject) => {
    failed = reject;
  });
  const module = await Promise.race([
    factory({
      // main() runs only when we call it, with our argv.
      noInitialRun: true,
      print: (line) => stdout.push(line),
      printErr: (line) => {
        if (!EXIT_NOTICE.test(line)) {
          stderr.push(line);
        }
      },
      instantiateWasm(imports, done) {
        wasm.instantiate(wasmModule, imports).then((instance) => {
          exports = instance.exports as EspeakWasmExports;
          done(instance, wasmModule);
        }, failed);
        return {};
      },
    }),
    instantiateFailed,
  ]);
  if (exports === undefined) {
    throw new Error("espeak-ng started without calling instantiateWasm");
  }
  const wasmExports = exports;
  const encoder = new TextEncoder();
  const pristine = snapshotMemory(wasmExports);
  return {
    run({ args, text }) {
      pristine.restore();
      stdout = [];
      stderr = [];
      if (text !== undefined) {
        module.FS.writeFile(TEXT_PATH, text);
      }
      const status = callMain(module, wasmExports, encoder, [PROGRAM_NAME, ...args]);
      const wav = readAndRemove(module, WAV_PATH);
      if (text !== undefined) {
        module.FS.unlink(TEXT_PATH);
      }
      return { status, stdout, stderr, wav };
    },
  };
}

// Emscripten's callMain is not exported by this build, so argv is laid out on the wasm stack here.
function callMain(
  module: EspeakModule,
  exports: EspeakWasmExports,
  encoder: TextEncoder,
  argv: string[],
): number {
  const stack = exports.stackSave();
  try {
    const strings = argv.map((arg) => {
      const bytes = encoder.encode(`${arg}\0`);
      const pointer = exports.stackAlloc(bytes.length);
      new Uint8Array(exports.memory.buffer, pointer, bytes.length).set(bytes);
      return pointer;
    });
    const pointers = exports.stackAlloc((argv.length + 1) * 4);
    const table = new Uint32Array(exports.memory.buffer, pointers, argv.length + 1);
    table.set([...strings, 0]);
    return module._main(argv.length, pointers);
  } catch (err) {
    // exit() inside main() unwinds as an ExitStatus throw; any other throw is an abort.
    if (isExitStatus(err)) {
      return err.status;
    }
    throw err;
  } finally {
    exports.stackRestore(stack);
  }
}

// Copy of a linear memory, restorable in place. The voice files embedded in it are left out: MEMFS
// serves them straight from that memory (Emscripten's --embed-file, "a slice of wasm memory that
// will never change"), and they are 18 of the 18.3 MB in use. The zero tail (the unused heap) is
// kept as a length only.
function snapshotMemory(exports: EspeakWasmExports): { restore(): void } {
  const buffer = exports.memory.buffer;
  // Wasm memories are whole 64 KiB pages, so 32-bit words cover them exactly.
  const words = new Uint32Array(buffer);
  let used = words.length;
  while (used > 0 && words[used - 1] === 0) {
    used--;
  }
  used *= 4;
  const files = embeddedFilesRange(exports);
  const ranges: [number, number][] =
    files !== undefined && files.end <= used
      ? [
          [0, files.start],
          [files.end, used],
        ]
      : [[0, used]];
  const saved = ranges.map(([start, end]) => ({
    start,
    bytes: new Uint8Array(buffer, start, end - start).slice(),
  }));
  return {
    restore() {
      const live = new Uint8Array(exports.memory.buffer);
      for (const { start, bytes } of saved) {
        live.set(bytes, start);
      }
      live.fill(0, used);
    },
  };
}

// Byte range holding the embedded files' contents, read from Emscripten's table of
// (name pointer, length, content pointer) entries; undefined when the table is absent or odd.
function embeddedFilesRange(
  exports: EspeakWasmExports,
): { start: number; end: number } | undefined {
  const table = exports.__emscripten_embedded_file_data?.value;
  const words = new Uint32Array(exports.memory.buffer);
  if (table === undefined || table % 4 !== 0) {
    return undefined;
  }
  let start = Number.POSITIVE_INFINITY;
  let end = 0;
  for (let entry = table / 4; (words[entry] ?? 0) !== 0; entry += 3) {
    const length = words[entry + 1] ?? 0;
    const content = words[entry + 2] ?? 0;
    start = Math.min(start, content);
    end = Math.max(end, content + length);
  }
  return start < end && end <= table ? { start, end } : undefined;
}

function isExitStatus(err: unknown): err is { status: number } {
  const candidate = err as { name?: unknown; status?: unknown } | null;
  return candidate?.name === "ExitStatus" && typeof candidate.status === "number";
}

function readAndRemove(module: EspeakModule, path: string): Uint8Array | undefined {
  let bytes: Uint8Array;
  try {
    bytes = module.FS.readFile(path);
  } catch {
    return undefined;
  }
  module.FS.unlink(path);
  return bytes;
}
