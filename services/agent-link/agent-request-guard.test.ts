import { create, fromBinary } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import { describe, expect, it } from "vitest";
import {
  CreateClonePromptRequestSchema,
  SynthesizeRequestSchema,
} from "../../gen/voxgate/v1/gpu_backend_pb.js";
import { prepareAgentRequest } from "./agent-request-guard.js";

const DIGEST = "a".repeat(64);
const URL = "https://bucket.example.com/p?X-Amz-Signature=abc";

describe("prepareAgentRequest", () => {
  it("clears the url of a clone prompt, keeps the rest, and leaves the caller's message alone", () => {
    const request = create(SynthesizeRequestSchema, {
      text: "hi",
      voice: {
        kind: {
          case: "clonePrompt",
          value: { digest: DIGEST, sizeBytes: 10n, model: { family: "f", size: "s" }, url: URL },
        },
      },
    });
    const { bytes, promptDigests } = prepareAgentRequest(SynthesizeRequestSchema, request);
    const sent = fromBinary(SynthesizeRequestSchema, bytes);
    expect(promptDigests).toEqual([DIGEST]);
    expect(sent.text).toBe("hi");
    expect(sent.voice?.kind.case).toBe("clonePrompt");
    if (sent.voice?.kind.case !== "clonePrompt") return;
    expect(sent.voice.kind.value).toMatchObject({ digest: DIGEST, sizeBytes: 10n, url: "" });
    expect(sent.voice.kind.value.model).toMatchObject({ family: "f", size: "s" });
    expect(Buffer.from(bytes).toString("latin1")).not.toContain("https://");
    expect(request.voice?.kind.value).toMatchObject({ url: URL });
  });

  it("drops unknown fields, so nothing smuggled in reaches an agent", () => {
    const request = create(SynthesizeRequestSchema, { text: "hi" });
    request.$unknown = [
      { no: 999, wireType: WireType.LengthDelimited, data: new TextEncoder().encode(`\x0a${URL}`) },
    ];
    const { bytes, promptDigests } = prepareAgentRequest(SynthesizeRequestSchema, request);
    expect(promptDigests).toEqual([]);
    expect(Buffer.from(bytes).toString("latin1")).not.toContain("https://");
    expect(fromBinary(SynthesizeRequestSchema, bytes).text).toBe("hi");
  });

  it("passes messages without prompts through unchanged", () => {
    const message = { kind: { case: "referenceAudio" as const, value: new Uint8Array([1, 2, 3]) } };
    const { bytes, promptDigests } = prepareAgentRequest(CreateClonePromptRequestSchema, message);
    expect(promptDigests).toEqual([]);
    const sent = fromBinary(CreateClonePromptRequestSchema, bytes);
    expect(sent.kind.case === "referenceAudio" && [...sent.kind.value]).toEqual([1, 2, 3]);
  });
});
