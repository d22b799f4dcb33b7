import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { WordTimingsSchema } from "../../gen/voxgate/v1/audio_pb.js";
import { checkWordTimings } from "./backend-format.js";

const timings = (word: string, textOffset: number, startMs: bigint, endMs: bigint) =>
  create(WordTimingsSchema, { words: [{ word, textOffset, startMs, endMs }] });

function refusal(call: () => void): ConnectError {
  try {
    call();
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected a refusal");
}

describe("checkWordTimings", () => {
  it("passes words that are pieces of the text with ordered times", () => {
    expect(() => checkWordTimings(timings("world", 6, 0n, 300n), 11, "box")).not.toThrow();
  });

  it.each([
    [timings("", 0, 0n, 1n), "word 0 is 0 characters long"],
    [timings("a".repeat(12), 0, 0n, 1n), "word 0 is 12 characters long"],
    [timings("world", 7, 0n, 1n), "word 0 lies outside the text (text_offset 7)"],
    [timings("world", -1, 0n, 1n), "word 0 lies outside the text (text_offset -1)"],
    [timings("world", 6, -5n, 1n), "word 0 has start_ms -5 and end_ms 1"],
    [timings("world", 6, 10n, 9n), "word 0 has start_ms 10 and end_ms 9"],
  ])("refuses an untrusted backend's %o: %s", (value, problem) => {
    const error = refusal(() => checkWordTimings(value, 11, "box"));
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toBe(`backend box sent invalid word timings: ${problem}`);
  });
});
