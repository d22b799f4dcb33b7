/**
 * HTTP plumbing of the StoryForge surface: JSON bodies read with a size and a nesting limit, and
 * answers in the two styles StoryForge Cloud knows (STORYFORGE.md §6): FastAPI `{"detail"}` for
 * auth refusals, and "soft" `{"ok": false, "error"}` with HTTP 200 for everything else.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { discardBody, type NodeRequest, type NodeResponse } from "../auth/rpc-error-response.js";
import { isJsonLimitError, kJsonDepthSetting, readJsonText } from "../input-limits/index.js";

/**
 * A failure answered in Cloud's soft style: HTTP `status` (200 unless the request itself was
 * unacceptable) with `{"ok": false, "error": "<code>: <message>"}`.
 */
export class StoryForgeError extends Error {
  override readonly name = "StoryForgeError";
  /** Machine-readable code Cloud folds into its job errors (e.g. `url_not_allowed`). */
  readonly code: string;
  /** HTTP status of the answer. @default 200 */
  readonly status: number;

  /** Creates the error; the answer's `error` is `<code>: <message>`. */
  constructor(code: string, message: string, status = 200, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.status = status;
  }

  /** The answer body. */
  toJSON(): { ok: false; error: string } {
    return { ok: false, error: this.message ? `${this.code}: ${this.message}` : this.code };
  }
}

/** Returns whether `err` is a {@link StoryForgeError}. */
export function isStoryForgeError(err: unknown): err is StoryForgeError {
  return err instanceof StoryForgeError;
}

/** Soft error codes Cloud sees for the Connect codes of failed typed calls. */
const CODE_NAMES: Partial<Record<Code, string>> = {
  [Code.InvalidArgument]: "invalid_request",
  [Code.NotFound]: "not_found",
  [Code.Unavailable]: "no_backend",
  [Code.ResourceExhausted]: "busy",
  [Code.DeadlineExceeded]: "timeout",
  [Code.Canceled]: "aborted",
  [Code.FailedPrecondition]: "failed_precondition",
  [Code.Unimplemented]: "not_implemented",
  [Code.PermissionDenied]: "forbidden",
  [Code.Unauthenticated]: "unauthorized",
};

/** Turns any failure into the soft error Cloud reads, keeping the typed call's message. */
export function toStoryForgeError(err: unknown): StoryForgeError {
  if (isStoryForgeError(err)) return err;
  const error = ConnectError.from(err);
  return new StoryForgeError(CODE_NAMES[error.code] ?? "internal", error.rawMessage, 200, {
    cause: err,
  });
}

/** Writes `value` as a JSON answer. */
export function writeJson(res: NodeResponse, value: unknown, status = 200): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(body)),
    "cache-control": "no-store",
  });
  res.end(body);
}

/**
 * Answers a gate refusal the way Cloud's FastAPI gateway did: 401 `{"detail":"unauthorized"}`
 * when no Bearer token came, 403 `{"detail":"forbidden"}` for a wrong token or one without the
 * `storyforge` scope. The unread body is dropped (never parsed).
 */
export function writeAuthRefusal(req: NodeRequest, res: NodeResponse, error: ConnectError): void {
  if (req.httpVersionMajor === 1) discardBody(req);
  const presented = /^Bearer\s+\S/i.test(String(req.headers.authorization ?? ""));
  const unauthorized = error.code === Code.Unauthenticated && !presented;
  const headers: Record<string, string> = { "x-voxgate-reason": error.rawMessage.slice(0, 200) };
  if (unauthorized) headers["www-authenticate"] = 'Bearer realm="voxgate"';
  res.writeHead(unauthorized ? 401 : 403, { ...headers, "content-type": "application/json" });
  res.end(JSON.stringify({ detail: unauthorized ? "unauthorized" : "forbidden" }));
}

/** Limits of a JSON request body. */
export interface JsonBodyLimits {
  /** Largest body, in bytes (VOXGATE_STORYFORGE_MAX_JSON_BYTES). */
  maxBytes: number;
  /** Deepest nesting of arrays and objects (the gateway's VOXGATE_MAX_JSON_DEPTH). */
  maxDepth: number;
}

/**
 * Reads a JSON object body within `limits`, scanned by the shared input-limits scanner while it
 * arrives (so a hostile body never reaches `JSON.parse`). A body over `maxBytes` is refused with
 * 413 as soon as its Content-Length (or the bytes read so far) shows it. An empty body reads as
 * `{}` (Cloud sends none on some POSTs). The Content-Type is not checked: Cloud's old gateway
 * dropped it.
 *
 * @throws StoryForgeError `request_too_large` (413), `json_too_deep`, `bad_json`, `bad_body`.
 */
export async function readJsonObject(
  req: NodeRequest,
  limits: JsonBodyLimits,
): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readJsonText(req, limits);
  } catch (err) {
    if (!isJsonLimitError(err)) throw err;
    // Drain what is left (up to the discard limit) so the client reads the answer.
    if (req.httpVersionMajor === 1) discardBody(req);
    if (err.limit === "bytes") {
      throw new StoryForgeError(
        "request_too_large",
        `the body exceeds ${limits.maxBytes} bytes (VOXGATE_STORYFORGE_MAX_JSON_BYTES)`,
        413,
      );
    }
    throw new StoryForgeError(
      "json_too_deep",
      `the body nests deeper than ${limits.maxDepth} levels (${kJsonDepthSetting})`,
    );
  }
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new StoryForgeError("bad_json", (err as Error).message);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new StoryForgeError("bad_body", "the body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

/** Reads an optional string field; anything else than a string (or absent/null) is refused. */
export function optionalString(
  body: Record<string, unknown>,
  key: string,
  maxChars: number,
): string {
  const value = body[key];
  if (value === undefined || value === null) return "";
  if (typeof value !== "string") {
    throw new StoryForgeError("bad_field", `${key} must be a string`);
  }
  if (value.length > maxChars) {
    throw new StoryForgeError("bad_field", `${key} is longer than ${maxChars} characters`);
  }
  return value;
}

/** Reads an optional finite number field (numbers in strings are accepted, as Python sends both). */
export function optionalNumber(body: Record<string, unknown>, key: string): number | undefined {
  const value = body[key];
  if (value === undefined || value === null || value === "") return undefined;
  const number = typeof value === "string" ? Number(value) : value;
  if (typeof number !== "number" || !Number.isFinite(number)) {
    throw new StoryForgeError("bad_field", `${key} must be a number`);
  }
  return number;
}
