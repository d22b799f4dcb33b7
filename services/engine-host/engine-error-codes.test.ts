import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  EngineInputError,
  EngineOverloadedError,
  EngineUnavailableError,
  SynthesisFailedError,
  UnknownVoiceError,
} from "../engines/engine-errors.js";
import { toEngineRpcError } from "./engine-error-codes.js";

describe("toEngineRpcError", () => {
  it.each([
    [new UnknownVoiceError("e", "x", ["a"]), Code.NotFound],
    [new EngineInputError("e", "bad reference"), Code.InvalidArgument],
    [new EngineOverloadedError("e", 8), Code.ResourceExhausted],
    [new EngineUnavailableError("e", "server down"), Code.Unavailable],
    [new SynthesisFailedError("e", "boom"), Code.Internal],
  ])("maps %s to its code, keeping the message and cause", (err, code) => {
    const mapped = toEngineRpcError(err);
    expect(mapped).toBeInstanceOf(ConnectError);
    expect((mapped as ConnectError).code).toBe(code);
    expect((mapped as ConnectError).rawMessage).toBe(err.message);
    expect((mapped as ConnectError).cause).toBe(err);
  });

  it("passes ConnectErrors and unknown errors through unchanged", () => {
    const connect = new ConnectError("x", Code.Aborted);
    const other = new TypeError("y");
    expect(toEngineRpcError(connect)).toBe(connect);
    expect(toEngineRpcError(other)).toBe(other);
  });
});
