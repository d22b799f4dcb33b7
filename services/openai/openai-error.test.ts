import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { OpenAiError, toOpenAiError } from "./openai-error.js";

describe("toOpenAiError", () => {
  it.each([
    [Code.InvalidArgument, 400, "invalid_request_error", "invalid_argument"],
    [Code.Unauthenticated, 401, "invalid_request_error", "unauthenticated"],
    [Code.PermissionDenied, 403, "permission_error", "permission_denied"],
    [Code.NotFound, 404, "invalid_request_error", "not_found"],
    [Code.ResourceExhausted, 429, "rate_limit_error", "resource_exhausted"],
    [Code.Unimplemented, 501, "server_error", "unimplemented"],
    [Code.Unavailable, 503, "server_error", "unavailable"],
    [Code.DeadlineExceeded, 504, "server_error", "deadline_exceeded"],
    [Code.Internal, 500, "server_error", "internal"],
    [Code.Aborted, 409, "server_error", "aborted"],
    [Code.FailedPrecondition, 400, "invalid_request_error", "failed_precondition"],
  ])("maps code %d to HTTP %d, %s, %s", (code, status, type, name) => {
    const error = toOpenAiError(new ConnectError("it broke", code));
    expect(error.status).toBe(status);
    expect(error.toJSON()).toEqual({
      error: { message: "it broke", type, param: null, code: name },
    });
  });

  it.each([
    ["text is 9 characters; the limit is 5", "input"],
    ["text is empty", "input"],
    ["speed 9 is outside 0.25..4", "speed"],
    ["sample_rate_hz 1 is outside 8000..192000", null],
  ])("names the OpenAI field of TtsService's INVALID_ARGUMENT %j", (message, param) => {
    expect(toOpenAiError(new ConnectError(message, Code.InvalidArgument)).param).toBe(param);
  });

  it("hides the message of an error that is no ConnectError", () => {
    const error = toOpenAiError(new Error("ECONNREFUSED 10.0.0.7:5432"));
    expect(error.status).toBe(500);
    expect(error.message).toBe("internal error");
  });

  it("keeps an OpenAiError as it is", () => {
    const original = new OpenAiError("nope", 413, null, "request_too_large");
    expect(toOpenAiError(original)).toBe(original);
  });
});
