import { describe, expect, it } from "vitest";
import { isEngineInputError } from "../engine-errors.js";
import type { EngineSynthesisRequest } from "../tts-engine.js";
import { createEchoEngine } from "./echo-engine.js";
import {
  countEchoMismatches,
  ECHO_PATTERN_BYTES,
  echoByteAt,
  fillEchoBytes,
} from "./echo-pattern.js";

const request = (params: Record<string, string>): EngineSynthesisRequest => ({
  text: "ignored",
  voiceId: "",
  speed: 1,
  instructions: "",
  params,
});

async function collect(engine = createEchoEngine(), params: Record<string, string> = {}) {
  const chunks: Uint8Array[] = [];
  for await (const chunk of engine.synthesize(request(params), new AbortController().signal)) {
    chunks.push(chunk.pcm);
  }
  return chunks;
}

describe("echo engine", () => {
  it("streams exactly echo.bytes of the pattern in chunks of echo.chunk_bytes", async () => {
    const chunks = await collect(undefined, { "echo.bytes": "10000", "echo.chunk_bytes": "4096" });
    expect(chunks.map((c) => c.byteLength)).toEqual([4096, 4096, 1808]);
    let offset = 0;
    for (const chunk of chunks) {
      expect(countEchoMismatches(chunk, offset)).toBe(0);
      offset += chunk.byteLength;
    }
    expect(chunks[2]?.[0]).toBe(echoByteAt(8192));
  });

  it("uses the engine defaults when the request names no size", async () => {
    const chunks = await collect(createEchoEngine({ defaultBytes: 300, defaultChunkBytes: 100 }));
    expect(chunks.map((c) => c.byteLength)).toEqual([100, 100, 100]);
  });

  it("detects a corrupted or misplaced chunk", () => {
    const chunk = fillEchoBytes(new Uint8Array(3000), 7);
    expect(countEchoMismatches(chunk, 7)).toBe(0);
    expect(countEchoMismatches(chunk, 8)).toBeGreaterThan(0);
    chunk[1500] = (chunk[1500] as number) ^ 0xff;
    expect(countEchoMismatches(chunk, 7)).toBe(1);
    expect(fillEchoBytes(new Uint8Array(4), ECHO_PATTERN_BYTES)).toEqual(
      fillEchoBytes(new Uint8Array(4), 0),
    );
  });

  it.each([
    [{ "echo.bytes": "67108866" }, "echo.bytes"],
    [{ "echo.bytes": "-1" }, "echo.bytes"],
    [{ "echo.bytes": "1e3" }, "echo.bytes"],
    [{ "echo.bytes": "101" }, "even"],
    [{ "echo.chunk_bytes": "0" }, "echo.chunk_bytes"],
    [{ "echo.hold_ms": "60001" }, "echo.hold_ms"],
    [{ "echo.byte": "10" }, "unknown param"],
  ])("refuses %j with an input error naming the limit", async (params, named) => {
    const error = await collect(undefined, params).catch((err: unknown) => err);
    expect(isEngineInputError(error)).toBe(true);
    expect((error as Error).message).toContain(named);
  });

  it("ignores params of other engines", async () => {
    const chunks = await collect(createEchoEngine({ defaultBytes: 8 }), { "qwen.seed": "1" });
    expect(chunks.map((c) => c.byteLength)).toEqual([8]);
  });

  it("stops when the signal aborts during a hold", async () => {
    const abort = new AbortController();
    const engine = createEchoEngine();
    const seen: number[] = [];
    const run = (async () => {
      const params = { "echo.bytes": "64", "echo.chunk_bytes": "32", "echo.hold_ms": "60000" };
      for await (const chunk of engine.synthesize(request(params), abort.signal)) {
        seen.push(chunk.pcm.byteLength);
        abort.abort(new Error("caller left"));
      }
    })();
    await expect(run).rejects.toThrow("caller left");
    expect(seen).toEqual([32]);
    await engine.close();
  });
});
