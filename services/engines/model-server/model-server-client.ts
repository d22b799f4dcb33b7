/**
 * The one HTTP client the model-server engines share: JSON requests to a GPU host's model server
 * with an inactivity timeout, a cap on answer size, redirects kept on the configured origin, and
 * the API key only ever in the `Authorization` header.
 */
import { injectTraceHeaders } from "../../tracing/spans.js";
import { EngineUnavailableError, SynthesisFailedError } from "../engine-errors.js";
import {
  MAX_SERVER_MESSAGE_CHARS,
  MODEL_SERVER_SETTING_ENV,
  ModelServerHttpError,
} from "./model-server-errors.js";

// Same-origin redirects followed before giving up; a model server has no reason for more.
const MAX_REDIRECTS = 3;

/** Options of {@link createModelServerClient}. */
export interface ModelServerClientOptions {
  /** Engine id used in error messages, e.g. `openai-http`. */
  engineId: string;
  /**
   * Base URL of the model server, `http://` or `https://`, without credentials, query or
   * fragment; paths are appended to its path.
   */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>`; never logged, removed from server messages. */
  apiKey?: string;
  /**
   * Longest wait for the answer to start and between two pieces of its body, in ms. Synthesis
   * may run long as long as audio keeps coming.
   * @default 120000
   */
  timeoutMs?: number;
  /**
   * Largest answer body, in bytes; reading stops and the call fails once it is passed.
   * @default 67108864
   */
  maxResponseBytes?: number;
  /** The fetch to use (tests). @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** One request to the model server. */
export interface ModelServerRequest {
  /** HTTP method. */
  method: "GET" | "POST";
  /** Path under the base URL, starting with `/`. */
  path: string;
  /** JSON body; omitted for GET. */
  json?: Record<string, unknown>;
  /** `Accept` header. @default "*\/*" */
  accept?: string;
  /** Aborts the request and its body; the abort reason is rethrown as is. */
  signal: AbortSignal;
  /** Timeout for this request instead of the client's, in ms. */
  timeoutMs?: number;
}

/** A 2xx answer whose body has not been read yet. Read it once, with `body()` or `json()`. */
export interface ModelServerResponse {
  /** HTTP status (2xx). */
  readonly status: number;
  /** `Content-Type` without parameters, lowercase; empty when absent. */
  readonly contentType: string;
  /**
   * The body as it arrives, piece by piece. Fails with `SynthesisFailedError` past
   * `maxResponseBytes`, `EngineUnavailableError` on the inactivity timeout, and with the abort
   * reason when the caller's signal aborts. Leaving the loop early closes the connection.
   */
  body(): AsyncIterable<Uint8Array>;
  /** Reads the whole body (within `maxResponseBytes`) and parses it as JSON. */
  json(): Promise<unknown>;
  /** Drops the body and closes the connection; idempotent. */
  discard(): void;
}

/** A client of one model server. */
export interface ModelServerClient {
  /** The base URL, normalized (no trailing slash). */
  readonly baseUrl: string;
  /**
   * Sends `request`. Resolves once the answer's headers are in; rejects with
   * {@link ModelServerHttpError} for a status other than 2xx (with the server's message),
   * `EngineUnavailableError` when the server cannot be reached, times out or redirects off its
   * origin, and with the abort reason when `request.signal` aborts.
   */
  request(request: ModelServerRequest): Promise<ModelServerResponse>;
}

/**
 * Creates the client. Throws `RangeError` for a base URL that is not http(s), carries
 * credentials, a query or a fragment, and for limits that are not positive integers.
 */
export function createModelServerClient(options: ModelServerClientOptions): ModelServerClient {
  const { engineId } = options;
  const base = parseBaseUrl(options.baseUrl);
  const timeoutMs = options.timeoutMs ?? 120_000;
  const maxResponseBytes = options.maxResponseBytes ?? 64 * 1024 * 1024;
  requirePositiveInteger("timeoutMs", timeoutMs);
  requirePositiveInteger("maxResponseBytes", maxResponseBytes);
  const doFetch = options.fetch ?? globalThis.fetch;
  const apiKey = options.apiKey ?? "";
  const baseUrl = base.href.replace(/\/+$/, "");

  // A server may echo request headers in its errors; the key must never reach a log from there.
  const clean = (text: string): string => {
    let out = text.replace(/\p{Cc}+/gu, " ").trim();
    if (apiKey) out = out.split(apiKey).join("[redacted]");
    return out.length > MAX_SERVER_MESSAGE_CHARS
      ? `${out.slice(0, MAX_SERVER_MESSAGE_CHARS)}…`
      : out;
  };

  async function request(req: ModelServerRequest): Promise<ModelServerResponse> {
    const operation = `${req.method} ${req.path}`;
    const limitMs = req.timeoutMs ?? timeoutMs;
    const controller = new AbortController();
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        controller.abort(new Error("model server timeout"));
      }, limitMs);
    };
    const disarm = () => clearTimeout(timer);
    const onAbort = () => controller.abort(req.signal.reason);
    req.signal.throwIfAborted();
    req.signal.addEventListener("abort", onAbort, { once: true });
    const finish = () => {
      disarm();
      req.signal.removeEventListener("abort", onAbort);
    };
    // Every failure after the request left is reported in one of three ways, decided here.
    const fail = (err: unknown): unknown => {
      if (req.signal.aborted) return req.signal.reason;
      if (timedOut) {
        return new EngineUnavailableError(
          engineId,
          `${operation} to the model server got no data for ${limitMs} ms (${MODEL_SERVER_SETTING_ENV.timeoutMs})`,
          { cause: err },
        );
      }
      if (err instanceof ModelServerHttpError || err instanceof SynthesisFailedError) return err;
      if (err instanceof EngineUnavailableError) return err;
      const code = (err as { cause?: { code?: string } }).cause?.code;
      return new EngineUnavailableError(
        engineId,
        `cannot reach the model server at ${baseUrl} (${code ?? (err as Error).message}); check ${MODEL_SERVER_SETTING_ENV.url}`,
        { cause: err },
      );
    };

    arm();
    let response: Response;
    try {
      const body = req.json === undefined ? undefined : JSON.stringify(req.json);
      let url = new URL(`${base.pathname.replace(/\/+$/, "")}${req.path}`, base);
      for (let hop = 0; ; hop++) {
        response = await doFetch(url, {
          method: req.method,
          signal: controller.signal,
          redirect: "manual",
          // traceparent: the model server may join the caller's trace (nothing when not tracing).
          headers: injectTraceHeaders({
            accept: req.accept ?? "*/*",
            ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
            ...(body === undefined ? {} : { "content-type": "application/json" }),
          }),
          ...(body === undefined ? {} : { body }),
        });
        if (response.status < 300 || response.status >= 400) break;
        await response.body?.cancel();
        const location = response.headers.get("location");
        const next = location ? new URL(location, url) : undefined;
        // The API key goes wherever the request goes: never let a redirect take it elsewhere.
        if (!next || next.origin !== base.origin || hop >= MAX_REDIRECTS) {
          throw new EngineUnavailableError(
            engineId,
            `${operation}: the model server redirected to ${next ? next.origin : "nowhere"}; voxgate follows at most ${MAX_REDIRECTS} redirects and only within ${base.origin} (${MODEL_SERVER_SETTING_ENV.url})`,
          );
        }
        url = next;
      }
      if (!response.ok) {
        const text = await readLimited(response, 64 * 1024).catch(() => new Uint8Array());
        throw new ModelServerHttpError(
          operation,
          response.status,
          clean(serverMessage(new TextDecoder().decode(text))),
        );
      }
    } catch (err) {
      finish();
      throw fail(err);
    }

    let used = false;
    const claim = () => {
      if (used) throw new Error(`${operation}: the body was already read`);
      used = true;
    };
    const ok = response;

    async function* body(): AsyncIterable<Uint8Array> {
      claim();
      const reader = ok.body?.getReader();
      if (!reader) {
        finish();
        return;
      }
      let total = 0;
      let done = false;
      try {
        while (true) {
          arm();
          let piece: Awaited<ReturnType<typeof reader.read>>;
          try {
            piece = await reader.read();
          } catch (err) {
            throw fail(err);
          }
          if (piece.done) {
            done = true;
            return;
          }
          total += piece.value.byteLength;
          if (total > maxResponseBytes) {
            throw new SynthesisFailedError(
              engineId,
              `${operation}: the model server's answer passed ${maxResponseBytes} bytes (${MODEL_SERVER_SETTING_ENV.maxResponseBytes})`,
            );
          }
          disarm();
          yield piece.value;
        }
      } finally {
        finish();
        // Leaving early (abort, limit, consumer stopped) must close the upstream connection so
        // the model server stops working for nobody.
        if (!done) controller.abort(new Error("model server answer no longer wanted"));
        reader.releaseLock();
      }
    }

    return {
      status: ok.status,
      contentType: (ok.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "",
      body,
      async json() {
        const chunks: Uint8Array[] = [];
        for await (const piece of body()) chunks.push(piece);
        const text = Buffer.concat(chunks).toString("utf8");
        try {
          return JSON.parse(text) as unknown;
        } catch (err) {
          throw new SynthesisFailedError(
            engineId,
            `${operation}: the model server answered ${ok.headers.get("content-type") || "a body"} that is not JSON`,
            { cause: err },
          );
        }
      },
      discard() {
        if (used) return;
        used = true;
        finish();
        controller.abort(new Error("model server answer not needed"));
      },
    };
  }

  return { baseUrl, request };
}

// Error bodies: OpenAI `{error: {message}}`, FastAPI `{detail}`, `{error: "…"}`, `{message}`, text.
function serverMessage(text: string): string {
  try {
    const value = JSON.parse(text) as Record<string, unknown>;
    const error = value.error;
    if (
      error &&
      typeof error === "object" &&
      typeof (error as { message?: unknown }).message === "string"
    ) {
      return (error as { message: string }).message;
    }
    for (const candidate of [error, value.detail, value.message]) {
      if (typeof candidate === "string") return candidate;
      if (candidate !== undefined && candidate !== null) return JSON.stringify(candidate);
    }
  } catch {
    // not JSON: the text itself is the message
  }
  return text;
}

async function readLimited(response: Response, maxBytes: number): Promise<Uint8Array> {
  const reader = response.body?.getReader();
  if (!reader) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (total < maxBytes) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).subarray(0, maxBytes);
}

function parseBaseUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new RangeError(`model server URL ${JSON.stringify(text)} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new RangeError(`model server URL must be http:// or https://, got ${url.protocol}`);
  }
  if (url.username || url.password) {
    // Credentials in a URL end up in logs; the key has its own setting.
    throw new RangeError(
      `model server URL must not carry credentials; put the key in ${MODEL_SERVER_SETTING_ENV.apiKey}`,
    );
  }
  if (url.search || url.hash) {
    throw new RangeError("model server URL must not have a query or a fragment");
  }
  return url;
}

function requirePositiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
}
