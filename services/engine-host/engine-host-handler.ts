import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { context as otelContext } from "@opentelemetry/api";
import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import {
  type GPUBackendService,
  type HealthResponse,
  type LoadReportSchema,
  ServingState,
  type SynthesizeRequest,
  type SynthesizeResponseSchema,
} from "../../gen/voxgate/v1/gpu_backend_pb.js";
import type { GpuReport, TtsEngine } from "../engines/tts-engine.js";
import { iterateInSpan, tracer } from "../tracing/spans.js";
import { createClonePrompts } from "./clone-prompts.js";
import { describeEngines } from "./engine-capabilities.js";
import { toEngineRpcError } from "./engine-error-codes.js";
import { createEngineExtras } from "./engine-extras.js";

/** The agent settings that bound an engine host's calls, by setting name (README: Settings). */
export interface EngineHostLimitSettings {
  /** Longest text of one call, in characters. */
  maxTextChars: number;
  /** Largest reference audio, in bytes. */
  maxReferenceBytes: number;
}

/** The limits of {@link EngineHostOptions} from the agent settings of the same names. */
export function engineHostLimitsFromSettings(
  settings: EngineHostLimitSettings,
): Pick<EngineHostOptions, "maxTextChars" | "maxReferenceBytes"> {
  return { maxTextChars: settings.maxTextChars, maxReferenceBytes: settings.maxReferenceBytes };
}

/** Options of {@link createEngineHost}. */
export interface EngineHostOptions {
  /** Engines hosted; the first is the default. */
  engines: readonly TtsEngine[];
  /** Calls run at once; further calls get RESOURCE_EXHAUSTED so the gateway picks another backend. */
  slots: number;
  /**
   * Longest text accepted, in characters; the gateway enforces its own (smaller) limit first
   * (agent setting maxTextChars).
   */
  maxTextChars: number;
  /**
   * Largest audio message, in bytes; longer engine output is sliced (on frame boundaries).
   * @default 65_536
   */
  maxChunkBytes?: number;
  /**
   * Largest reference audio CreateClonePrompt accepts, in bytes (agent setting maxReferenceBytes,
   * `VOXGATE_AGENT_MAX_REFERENCE_BYTES`).
   */
  maxReferenceBytes: number;
  /** The host's GPUs for load reports (latest background sample); none when absent. */
  gpuReport?: () => GpuReport;
}

/** Engine host: GPUBackendService over local engines, with a slot counter and drain switch. */
export interface EngineHost {
  /** The service implementation to serve (over the agent link or in process). */
  readonly handler: ServiceImpl<typeof GPUBackendService>;
  /** Calls running now. */
  readonly inFlight: number;
  /** Current load, as reported in heartbeats and Health. */
  load(): MessageInitShape<typeof LoadReportSchema>;
  /** Stops taking new calls (Health reports DRAINING); running calls finish. */
  drain(): void;
  /** Resolves when no call is running. */
  idle(): Promise<void>;
}

/** Creates the engine host. */
export function createEngineHost(options: EngineHostOptions): EngineHost {
  const { engines, slots } = options;
  const { maxTextChars } = options;
  const maxChunkBytes = options.maxChunkBytes ?? 64 * 1024;
  if (engines.length === 0) throw new Error("an engine host needs at least one engine");
  let inFlight = 0;
  let draining = false;
  let idleWaiters: Array<() => void> = [];
  const capabilities = describeEngines(engines, slots);
  let lastCpu = process.cpuUsage();
  let lastCpuAt = performance.now();

  const enter = () => {
    if (draining) throw new ConnectError("backend is draining", Code.Unavailable);
    if (inFlight >= slots) {
      throw new ConnectError(`all ${slots} slots are busy`, Code.ResourceExhausted);
    }
    inFlight++;
  };
  const leave = () => {
    inFlight--;
    if (inFlight === 0) {
      for (const wake of idleWaiters) wake();
      idleWaiters = [];
    }
  };

  const speakers = engines.filter((e) => e.info.speaks !== false);
  const pickEngine = (id: string): TtsEngine => {
    if (!id) {
      if (!speakers[0]) throw new ConnectError("no hosted engine speaks", Code.Unimplemented);
      return speakers[0];
    }
    const engine = speakers.find((e) => e.info.id === id);
    if (!engine) {
      const known = speakers.map((e) => e.info.id).join(", ");
      throw new ConnectError(`engine "${id}" is not hosted here (hosted: ${known})`, Code.NotFound);
    }
    return engine;
  };

  async function* synthesize(
    request: SynthesizeRequest,
    context: HandlerContext,
  ): AsyncIterable<MessageInitShape<typeof SynthesizeResponseSchema>> {
    if (request.text.trim().length === 0) {
      throw new ConnectError("text is empty", Code.InvalidArgument);
    }
    if (request.text.length > maxTextChars) {
      throw new ConnectError(
        `text is ${request.text.length} characters; this backend's limit is ${maxTextChars}`,
        Code.InvalidArgument,
      );
    }
    const engine = pickEngine(request.engine);
    const promptRef =
      request.voice?.kind.case === "clonePrompt" ? request.voice.kind.value : undefined;
    if (promptRef) clonePrompts.check(engine, promptRef);
    enter();
    try {
      // Inside the slot: fetching a prompt the cache lacks is part of this call's work.
      const clonePrompt = promptRef ? await clonePrompts.resolve(promptRef, context) : undefined;
      let audioBytes = 0;
      // The engine's own work (and any request it makes to a model server) in one span.
      const parent = otelContext.active();
      const span = tracer.startSpan(
        "voxgate.engine.synthesize",
        {
          attributes: {
            "voxgate.engine": engine.info.id,
            "voxgate.text_chars": request.text.length,
            ...(clonePrompt ? { "voxgate.clone_prompt": true } : {}),
          },
        },
        parent,
      );
      const chunks = iterateInSpan(
        span,
        parent,
        () =>
          engine.synthesize(
            {
              text: request.text,
              voiceId: request.voice?.kind.case === "presetId" ? request.voice.kind.value : "",
              speed: request.speed > 0 ? request.speed : 1,
              instructions: request.instructions,
              ...(clonePrompt ? { clonePrompt } : {}),
              params: request.params,
              language: request.language,
              ...(request.wordTimings ? { wordTimings: true } : {}),
            },
            context.signal,
          ),
        (ended) => ended.setAttribute("voxgate.audio_bytes", audioBytes),
      );
      // The format goes out with the first audio: a model server's answer may name its own rate
      // (a WAV header), which is what the audio really is.
      let format: { sampleRateHz: number; channels: number } | undefined;
      let chunkBytes = 0;
      const formatMessage = (f: { sampleRateHz: number; channels: number }) => {
        const frameBytes = 2 * f.channels;
        chunkBytes = Math.max(frameBytes, Math.floor(maxChunkBytes / frameBytes) * frameBytes);
        return {
          kind: {
            case: "format" as const,
            value: {
              encoding: AudioEncoding.PCM,
              sampleRateHz: f.sampleRateHz,
              channels: f.channels,
              contentType: `audio/L16; rate=${f.sampleRateHz}; channels=${f.channels}`,
            },
          },
        };
      };
      try {
        for await (const chunk of chunks) {
          if (!format) {
            format = chunk.format ?? engine.info.format;
            yield formatMessage(format);
          }
          // Engines yield whole sentences; slices keep messages small and audio flowing evenly.
          for (let offset = 0; offset < chunk.pcm.byteLength; offset += chunkBytes) {
            const slice = chunk.pcm.subarray(offset, offset + chunkBytes);
            audioBytes += slice.byteLength;
            yield { kind: { case: "audio", value: slice } };
          }
          // After the audio they time, so a caller never sees a word before its sound.
          if (request.wordTimings && chunk.words && chunk.words.length > 0) {
            yield {
              kind: {
                case: "words",
                value: {
                  words: chunk.words.map((w) => ({
                    word: w.word,
                    startMs: BigInt(w.startMs),
                    endMs: BigInt(w.endMs),
                    textOffset: w.textOffset,
                  })),
                },
              },
            };
          }
        }
      } catch (err) {
        throw toEngineRpcError(err);
      }
      if (!format) {
        format = engine.info.format;
        yield formatMessage(format);
      }
      const { sampleRateHz, channels } = format;
      yield {
        kind: {
          case: "summary",
          value: {
            audioBytes: BigInt(audioBytes),
            durationMs: BigInt(Math.round((audioBytes / (2 * channels) / sampleRateHz) * 1000)),
            engine: engine.info.id,
            model: { family: engine.info.modelFamily, size: engine.info.modelSize },
          },
        },
      };
    } finally {
      leave();
    }
  }

  const load = (): MessageInitShape<typeof LoadReportSchema> => {
    const now = performance.now();
    const cpu = process.cpuUsage(lastCpu);
    const cpuRatio = (cpu.user + cpu.system) / 1000 / Math.max(1, now - lastCpuAt);
    lastCpu = process.cpuUsage();
    lastCpuAt = now;
    const gpu = options.gpuReport?.();
    return {
      inFlight,
      slots,
      cpuRatio,
      rssBytes: BigInt(process.memoryUsage.rss()),
      ...(gpu && gpu.gpus.length > 0
        ? {
            gpuMemoryUsedBytes: BigInt(
              Math.round(gpu.gpus.reduce((n, g) => n + (g.memoryUsedMib ?? 0), 0) * 1024 * 1024),
            ),
            gpus: gpu.gpus,
            gpuProcesses: gpu.processes,
          }
        : {}),
    };
  };

  const clonePrompts = createClonePrompts({
    engines,
    pickEngine,
    maxReferenceBytes: options.maxReferenceBytes,
    maxChunkBytes,
    enter,
    leave,
  });

  const extras = createEngineExtras({
    engines,
    maxAudioBytes: options.maxReferenceBytes,
    enter,
    leave,
  });

  const handler: ServiceImpl<typeof GPUBackendService> = {
    health() {
      const state: HealthResponse["state"] = draining
        ? ServingState.DRAINING
        : ServingState.SERVING;
      return { state, capabilities, load: load() };
    },
    synthesize,
    createClonePrompt: (requests, context) => clonePrompts.create(requests, context),
    analyzeAudio: (requests, context) => extras.analyzeAudio(requests, context),
    generate: (request, context) => extras.generate(request, context),
  };

  return {
    handler,
    get inFlight() {
      return inFlight;
    },
    load,
    drain() {
      draining = true;
    },
    idle() {
      if (inFlight === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
  };
}
