import { describe, expect, it } from "vitest";
import { BackendAdminService } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { JobService } from "../../gen/voxgate/v1/job_pb.js";
import { PromptStoreService } from "../../gen/voxgate/v1/prompt_store_pb.js";
import { TtsService } from "../../gen/voxgate/v1/tts_pb.js";
import { VoiceService } from "../../gen/voxgate/v1/voice_pb.js";
import {
  compareSpecificity,
  matchPathTemplate,
  PathTemplateError,
  parsePathTemplate,
} from "./path-template.js";
import { createRouteTable } from "./route-table.js";

const table = createRouteTable([
  TtsService,
  VoiceService,
  BackendAdminService,
  JobService,
  PromptStoreService,
]);

/** Path → RPC of voxgate's own contracts, seed paths of the older APIs included. */
const voxgateRoutes: Array<[string, string, string]> = [
  ["POST", "/v1/tts", "voxgate.v1.TtsService.Synthesize"],
  ["POST", "/tts", "voxgate.v1.TtsService.Synthesize"],
  ["POST", "/v1/speech:synthesize", "voxgate.v1.TtsService.Synthesize"],
  ["POST", "/v1/speech:stream", "voxgate.v1.TtsService.StreamSynthesize"],
  ["POST", "/v1/voices", "voxgate.v1.VoiceService.CreateVoice"],
  ["GET", "/v1/named-prompts/maya", "voxgate.v1.PromptStoreService.GetNamedPrompt"],
  ["POST", "/v1/named-prompts:clone", "voxgate.v1.PromptStoreService.CreateNamedPrompt"],
  ["GET", "/api/voices", "voxgate.v1.VoiceService.ListVoices"],
  ["GET", "/v1/voices/en-us", "voxgate.v1.VoiceService.GetVoice"],
  ["PATCH", "/v1/voices/vc_x", "voxgate.v1.VoiceService.UpdateVoice"],
  ["POST", "/v1/voices/v1:analyze", "voxgate.v1.VoiceService.AnalyzeVoice"],
  ["POST", "/v1/audio/analyze", "voxgate.v1.VoiceService.AnalyzeAudio"],
  ["POST", "/v1/audio:analyze", "voxgate.v1.VoiceService.AnalyzeAudio"],
  ["GET", "/v1/metrics", "voxgate.v1.BackendAdminService.GetMetrics"],
  ["GET", "/api/metrics", "voxgate.v1.BackendAdminService.GetMetrics"],
  ["GET", "/v1/backends:watch", "voxgate.v1.BackendAdminService.WatchBackends"],
  ["GET", "/v1/backends/b1", "voxgate.v1.BackendAdminService.GetBackend"],
  ["POST", "/v1/backends/b1:drain", "voxgate.v1.BackendAdminService.DrainBackend"],
  ["POST", "/jobs/dispatch", "voxgate.v1.JobService.CreateJob"],
  ["GET", "/v1/jobs/j1:watch", "voxgate.v1.JobService.WatchJob"],
  ["GET", "/v1/jobs/j1/output", "voxgate.v1.JobService.GetJobOutput"],
  ["DELETE", "/v1/prompts/abc", "voxgate.v1.PromptStoreService.DeletePrompt"],
];

describe("voxgate's route table", () => {
  for (const [method, path, rpc] of voxgateRoutes) {
    it(`${method} ${path} → ${rpc}`, () => {
      const found = table.match(method, path);
      expect(found.kind).toBe("match");
      if (found.kind !== "match") return;
      expect(`${found.binding.method.parent.typeName}.${found.binding.method.name}`).toBe(rpc);
    });
  }

  it("answers 405 with the allowed methods and 404 for unknown paths", () => {
    expect(table.match("GET", "/v1/tts")).toEqual({ kind: "method-not-allowed", allow: ["POST"] });
    expect(table.match("PUT", "/v1/voices/x")).toEqual({
      kind: "method-not-allowed",
      allow: ["DELETE", "GET", "PATCH"],
    });
    expect(table.match("GET", "/v2/tts")).toEqual({ kind: "not-found" });
  });
});

describe("path templates", () => {
  it.each([
    ["v1/x", "must start with /"],
    ["/v1/{name", "unbalanced braces"],
    ["/v1/{name}x", "bad variable"],
    ["/v1/{na-me}", "bad field path"],
    ["/v1/**/x", '"**" must be the last segment'],
    ["/v1//x", "empty segment"],
    ["/v1/{a={b}}", "unbalanced braces"],
  ])("refuses %s (%s)", (source, why) => {
    expect(() => parsePathTemplate(source)).toThrow(PathTemplateError);
    expect(() => parsePathTemplate(source)).toThrow(why);
  });

  it("parses variables, nested field paths and the verb", () => {
    const t = parsePathTemplate("/v1/{book.name=shelves/*/books/*}:read");
    expect(t.verb).toBe("read");
    expect(t.variables).toEqual([{ fieldPath: ["book", "name"], start: 1, end: 5 }]);
    expect(matchPathTemplate(t, "/v1/shelves/s/books/b:read")?.get("book.name")).toBe(
      "shelves/s/books/b",
    );
    expect(matchPathTemplate(t, "/v1/shelves/s/books/b")).toBeUndefined();
    expect(matchPathTemplate(t, "/v1/shelves//books/b:read")).toBeUndefined();
  });

  it("orders templates literal first, then *, then **, and a verb before none", () => {
    const sorted = ["/v1/{a=**}", "/v1/{a}", "/v1/x", "/v1/{a}:go"]
      .map(parsePathTemplate)
      .sort(compareSpecificity)
      .map((t) => t.source);
    expect(sorted).toEqual(["/v1/x", "/v1/{a}:go", "/v1/{a}", "/v1/{a=**}"]);
  });
});
