/**
 * Test helper: a backend offering clone_prompt_create and clone_prompt_synthesize through the real
 * GPUBackendService contract (an in-process transport), recording every call. The prompt it makes
 * is JSON naming the sha256 of the reference it was given, so a test can tell prompts apart.
 */
import { createHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createClient,
  createServiceImplSpec,
  type ServiceImpl,
} from "@connectrpc/connect";
import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import { BackendKind } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { CapabilitiesSchema, Feature } from "../../gen/voxgate/v1/capabilities_pb.js";
import {
  GPUBackendService,
  ServingState,
  type SynthesizeRequest,
} from "../../gen/voxgate/v1/gpu_backend_pb.js";
import { createInProcessTransport } from "../../services/gateway/in-process-transport.js";
import type { BackendRegistration } from "../../services/registry/index.js";

/** What the fake recorded. */
export interface FakeCloneBackend {
  /** Registration for `registry.add`. */
  registration: BackendRegistration;
  /** Every CreateClonePrompt: the spec's content type and the reference bytes received. */
  cloneCalls: Array<{ contentType: string; engine: string; referenceBytes: number }>;
  /** Every Synthesize request. */
  synthesizeCalls: SynthesizeRequest[];
}

/** Options of {@link createFakeCloneBackend}. */
export interface FakeCloneBackendOptions {
  /** Registry id. */
  id: string;
  /** Model the engine runs. @default { family: "fake-clone", size: "1" } */
  model?: { family: string; size: string };
  /** Features. @default synthesize, clone_prompt_create, clone_prompt_synthesize */
  features?: Feature[];
  /** Priority. @default 0 */
  priority?: number;
  /** Whether Synthesize holds every call until it is cancelled (deadline tests). @default false */
  holdSynthesize?: boolean;
}

/** Creates the fake backend. */
export function createFakeCloneBackend(options: FakeCloneBackendOptions): FakeCloneBackend {
  const model = options.model ?? { family: "fake-clone", size: "1" };
  const cloneCalls: FakeCloneBackend["cloneCalls"] = [];
  const synthesizeCalls: SynthesizeRequest[] = [];
  const handler: ServiceImpl<typeof GPUBackendService> = {
    async health() {
      return { state: ServingState.SERVING };
    },
    async *createClonePrompt(requests) {
      let contentType = "";
      let engine = "";
      const hash = createHash("sha256");
      let bytes = 0;
      for await (const piece of requests) {
        if (piece.kind.case === "spec") {
          contentType = piece.kind.value.contentType;
          engine = piece.kind.value.engine;
        } else if (piece.kind.case === "referenceAudio") {
          hash.update(piece.kind.value);
          bytes += piece.kind.value.byteLength;
        }
      }
      cloneCalls.push({ contentType, engine, referenceBytes: bytes });
      const prompt = Buffer.from(JSON.stringify({ reference: hash.digest("hex"), by: options.id }));
      yield {
        kind: {
          case: "description",
          value: {
            engine: "fake-clone",
            model,
            sizeBytes: BigInt(prompt.byteLength),
            contentType: "application/json",
          },
        },
      };
      yield { kind: { case: "prompt", value: prompt } };
    },
    async *synthesize(request, context) {
      synthesizeCalls.push(request);
      if (options.holdSynthesize) {
        await new Promise((_, reject) => {
          context.signal.addEventListener("abort", () => reject(context.signal.reason), {
            once: true,
          });
        });
      }
      yield {
        kind: {
          case: "format",
          value: {
            encoding: AudioEncoding.PCM,
            sampleRateHz: 16_000,
            channels: 1,
            contentType: "audio/L16; rate=16000; channels=1",
          },
        },
      };
      yield { kind: { case: "audio", value: new Uint8Array(3200) } };
    },
    async analyzeAudio() {
      throw new ConnectError("not here", Code.Unimplemented);
    },
    // biome-ignore lint/correctness/useYield: not offered
    async *generate() {
      throw new ConnectError("not here", Code.Unimplemented);
    },
  };
  const transport = createInProcessTransport({
    services: [createServiceImplSpec<typeof GPUBackendService>(GPUBackendService, handler)],
    interceptors: [],
  });
  return {
    cloneCalls,
    synthesizeCalls,
    registration: {
      id: options.id,
      kind: BackendKind.AGENT,
      client: createClient(GPUBackendService, transport),
      capabilities: create(CapabilitiesSchema, {
        slots: 4,
        engines: [
          {
            id: "fake-clone",
            version: "1",
            model,
            features: options.features ?? [
              Feature.SYNTHESIZE,
              Feature.CLONE_PROMPT_CREATE,
              Feature.CLONE_PROMPT_SYNTHESIZE,
            ],
            voices: [{ id: "fake-preset", name: "Fake preset", languages: ["en"] }],
            sampleRateHz: 16_000,
          },
        ],
      }),
      priority: options.priority ?? 0,
      version: "test",
      address: "in-process",
      labels: {},
    },
  };
}

/** A WAV file of a 200 Hz tone: 16-bit mono at 16 kHz, `seconds` long. */
export function toneWav(seconds: number, frequencyHz = 200): Uint8Array {
  const rate = 16_000;
  const frames = Math.round(seconds * rate);
  const out = Buffer.alloc(44 + frames * 2);
  out.write("RIFF", 0, "latin1");
  out.writeUInt32LE(36 + frames * 2, 4);
  out.write("WAVEfmt ", 8, "latin1");
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(1, 20);
  out.writeUInt16LE(1, 22);
  out.writeUInt32LE(rate, 24);
  out.writeUInt32LE(rate * 2, 28);
  out.writeUInt16LE(2, 32);
  out.writeUInt16LE(16, 34);
  out.write("data", 36, "latin1");
  out.writeUInt32LE(frames * 2, 40);
  for (let i = 0; i < frames; i++) {
    out.writeInt16LE(
      Math.round(8000 * Math.sin((2 * Math.PI * frequencyHz * i) / rate)),
      44 + i * 2,
    );
  }
  return out;
}

/** A WAV header that claims `hours` of 16 kHz mono audio, followed by one second of samples. */
export function forgedLongWav(hours: number): Uint8Array {
  const wav = toneWav(1);
  const claimed = Math.min(0xffff_fff0, hours * 3600 * 16_000 * 2);
  Buffer.from(wav.buffer, wav.byteOffset).writeUInt32LE(claimed, 40);
  Buffer.from(wav.buffer, wav.byteOffset).writeUInt32LE(claimed + 36, 4);
  return wav;
}
