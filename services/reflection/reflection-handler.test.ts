import { fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  ServerReflection,
  type ServerReflectionRequestSchema,
  type ServerReflectionResponse,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1Alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { Health } from "../../gen/health/v1/health_pb.js";
import { TtsService } from "../../gen/voxgate/v1/tts_pb.js";
import { VoiceService } from "../../gen/voxgate/v1/voice_pb.js";
import { createReflectionServices } from "./reflection-handler.js";

type Request = MessageInitShape<typeof ServerReflectionRequestSchema>;

function transport(maxRequestsPerStream?: number) {
  const specs = createReflectionServices({
    services: [TtsService, VoiceService, Health],
    ...(maxRequestsPerStream ? { maxRequestsPerStream } : {}),
  });
  return createRouterTransport((router) => {
    for (const spec of specs) {
      for (const method of Object.values(spec.methods))
        router.rpc(method.method, method.impl as never);
    }
  });
}

/** Sends `requests` on one v1 stream and collects the answers. */
async function ask(requests: Request[], maxRequestsPerStream?: number) {
  const client = createClient(ServerReflection, transport(maxRequestsPerStream));
  const out: ServerReflectionResponse[] = [];
  for await (const response of client.serverReflectionInfo(
    (async function* () {
      yield* requests;
    })(),
  )) {
    out.push(response);
  }
  return out;
}

/** Names of the files in a file_descriptor_response. */
function fileNames(response: ServerReflectionResponse | undefined): string[] {
  if (response?.messageResponse.case !== "fileDescriptorResponse") {
    throw new Error(`not a file answer: ${response?.messageResponse.case}`);
  }
  return response.messageResponse.value.fileDescriptorProto.map(
    (bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name,
  );
}

describe("gRPC server reflection", () => {
  it("lists the offered services and reflection itself, sorted", async () => {
    const [answer] = await ask([
      { host: "h", messageRequest: { case: "listServices", value: "" } },
    ]);
    expect(answer?.validHost).toBe("h");
    expect(answer?.originalRequest?.messageRequest.case).toBe("listServices");
    expect(answer?.messageResponse.case).toBe("listServicesResponse");
    const names =
      answer?.messageResponse.case === "listServicesResponse"
        ? answer.messageResponse.value.service.map((s) => s.name)
        : [];
    expect(names).toEqual([
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "voxgate.v1.TtsService",
      "voxgate.v1.VoiceService",
    ]);
  });

  it("finds the file of services, methods, nested messages, fields and enum values", async () => {
    for (const symbol of [
      "voxgate.v1.TtsService",
      "voxgate.v1.TtsService.StreamSynthesize",
      "voxgate.v1.SynthesizeSpeechRequest",
      "voxgate.v1.SynthesizeSpeechRequest.text",
      ".voxgate.v1.TtsService",
    ]) {
      const [answer] = await ask([
        { messageRequest: { case: "fileContainingSymbol", value: symbol } },
      ]);
      expect(fileNames(answer)[0], symbol).toBe("voxgate/v1/tts.proto");
    }
    const [health] = await ask([
      {
        messageRequest: {
          case: "fileContainingSymbol",
          value: "grpc.health.v1.HealthCheckResponse.SERVING",
        },
      },
    ]);
    expect(fileNames(health)[0]).toBe("health/v1/health.proto");
  });

  it("sends a file's imports with it, each file once per stream", async () => {
    const answers = await ask([
      { messageRequest: { case: "fileByFilename", value: "voxgate/v1/tts.proto" } },
      { messageRequest: { case: "fileByFilename", value: "voxgate/v1/voice.proto" } },
      { messageRequest: { case: "fileByFilename", value: "google/api/annotations.proto" } },
    ]);
    const first = fileNames(answers[0]);
    expect(first[0]).toBe("voxgate/v1/tts.proto");
    expect(first).toEqual(expect.arrayContaining(["google/api/annotations.proto"]));
    expect(new Set(first).size).toBe(first.length);
    const second = fileNames(answers[1]);
    expect(second[0]).toBe("voxgate/v1/voice.proto");
    // Already sent on this stream: only what is new comes.
    expect(second.slice(1).filter((name) => first.includes(name))).toEqual([]);
    // Asked for by name, a file comes again even though it was sent.
    expect(fileNames(answers[2])[0]).toBe("google/api/annotations.proto");
  });

  it("answers extension lookups (google.api.http on MethodOptions)", async () => {
    const [numbers, file] = await ask([
      {
        messageRequest: {
          case: "allExtensionNumbersOfType",
          value: "google.protobuf.MethodOptions",
        },
      },
      {
        messageRequest: {
          case: "fileContainingExtension",
          value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 72295728 },
        },
      },
    ]);
    expect(numbers?.messageResponse.case).toBe("allExtensionNumbersResponse");
    if (numbers?.messageResponse.case === "allExtensionNumbersResponse") {
      expect(numbers.messageResponse.value.baseTypeName).toBe("google.protobuf.MethodOptions");
      expect(numbers.messageResponse.value.extensionNumber).toContain(72295728);
    }
    expect(fileNames(file)[0]).toBe("google/api/annotations.proto");
  });

  it("answers NOT_FOUND in the stream and keeps serving it", async () => {
    const answers = await ask([
      { messageRequest: { case: "fileContainingSymbol", value: "voxgate.v1.NoSuchThing" } },
      { messageRequest: { case: "fileByFilename", value: "nope.proto" } },
      {
        messageRequest: {
          case: "fileContainingExtension",
          value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 1 },
        },
      },
      { messageRequest: { case: "listServices", value: "" } },
    ]);
    for (const answer of answers.slice(0, 3)) {
      expect(answer.messageResponse.case).toBe("errorResponse");
      if (answer.messageResponse.case === "errorResponse") {
        expect(answer.messageResponse.value.errorCode).toBe(Code.NotFound);
      }
    }
    expect(answers[0]?.messageResponse.value).toMatchObject({
      errorMessage: "symbol voxgate.v1.NoSuchThing not found",
    });
    expect(answers[3]?.messageResponse.case).toBe("listServicesResponse");
  });

  it("ends a stream that sends more requests than the limit with RESOURCE_EXHAUSTED", async () => {
    const list: Request = { messageRequest: { case: "listServices", value: "" } };
    const error = await ask([list, list, list], 2).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.ResourceExhausted);
    expect((error as ConnectError).rawMessage).toContain("at most 2 requests");
  });

  it("serves v1alpha with the same answers", async () => {
    const client = createClient(ServerReflectionV1Alpha, transport());
    const out = [];
    for await (const response of client.serverReflectionInfo(
      (async function* () {
        yield { messageRequest: { case: "listServices" as const, value: "" } };
      })(),
    )) {
      out.push(response);
    }
    expect(out[0]?.$typeName).toBe("grpc.reflection.v1alpha.ServerReflectionResponse");
    expect(out[0]?.messageResponse.case).toBe("listServicesResponse");
  });
});
