import type { Readable } from "node:stream";

/** Limits every JSON body is held to while it is read, before `JSON.parse` sees it. */
export interface JsonLimits {
  /** Deepest nesting of `[` and `{` (setting maxJsonDepth). */
  maxDepth: number;
  /** Largest body, in bytes. */
  maxBytes: number;
}

/** Setting that sets {@link JsonLimits.maxDepth}, named in refusals. */
export const kJsonDepthSetting = "VOXGATE_MAX_JSON_DEPTH";
/** Setting that sets {@link JsonLimits.maxBytes}, named in refusals. */
export const kJsonBytesSetting = "VOXGATE_MAX_REQUEST_BYTES";

/** Raised when a JSON body passes a limit; the message names the limit and its setting. */
export class JsonLimitError extends Error {
  override readonly name = "JsonLimitError";
  /** Which limit was passed. */
  readonly limit: "depth" | "bytes";

  constructor(limit: "depth" | "bytes", message: string) {
    super(message);
    this.limit = limit;
  }
}

/** Returns whether `err` is a {@link JsonLimitError}. */
export function isJsonLimitError(err: unknown): err is JsonLimitError {
  return err instanceof JsonLimitError;
}

/** Feeds the bytes of one JSON text in pieces; throws as soon as a limit is passed. */
export interface JsonLimitScanner {
  /** Scans the next piece. @throws JsonLimitError */
  push(bytes: Uint8Array): void;
  /** Starts over for the next JSON text (the next message of a stream). */
  reset(): void;
  /** Bytes scanned since the last reset. */
  readonly bytes: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;

/**
 * Creates a scanner that tracks bracket depth and size over raw UTF-8 bytes, piece by piece:
 * brackets, quotes and backslashes are ASCII and never occur inside a multi-byte sequence, so
 * no decoding is needed. It refuses a body the moment it nests past `maxDepth` or grows past
 * `maxBytes`, before any object is built (a 16 MB body of `[` would otherwise build millions of
 * arrays: ~500 MB and seconds of blocked event loop). Brackets inside strings do not count.
 */
export function createJsonLimitScanner(limits: JsonLimits): JsonLimitScanner {
  let depth = 0;
  let inString = false;
  let escaped = false;
  let total = 0;
  return {
    get bytes() {
      return total;
    },
    reset() {
      depth = 0;
      inString = false;
      escaped = false;
      total = 0;
    },
    push(bytes) {
      total += bytes.byteLength;
      if (total > limits.maxBytes) {
        throw new JsonLimitError(
          "bytes",
          `the JSON body exceeds ${limits.maxBytes} bytes (max request bytes: ${kJsonBytesSetting})`,
        );
      }
      for (let i = 0; i < bytes.length; i++) {
        const b = bytes[i] as number;
        if (inString) {
          if (escaped) escaped = false;
          else if (b === BACKSLASH) escaped = true;
          else if (b === QUOTE) inString = false;
        } else if (b === QUOTE) {
          inString = true;
        } else if (b === OPEN_ARRAY || b === OPEN_OBJECT) {
          if (++depth > limits.maxDepth) {
            throw new JsonLimitError(
              "depth",
              `the JSON body nests deeper than ${limits.maxDepth} levels (max JSON depth: ${kJsonDepthSetting})`,
            );
          }
        } else if (b === CLOSE_ARRAY || b === CLOSE_OBJECT) {
          depth--;
        }
      }
    },
  };
}

/**
 * Checks a JSON text already in memory (a setting, a config file) against the depth limit.
 * @throws JsonLimitError
 */
export function checkJsonText(text: string, limits: JsonLimits): void {
  createJsonLimitScanner(limits).push(Buffer.from(text, "utf8"));
}

/**
 * Reads a request body as JSON text, scanning each piece as it arrives: refuses (rejects with a
 * {@link JsonLimitError}) as soon as a limit is passed, or at once when Content-Length announces
 * too many bytes, and stops reading. Callers answer the error in their own format, then parse.
 */
export function readJsonText(
  req: Readable & { headers: Record<string, string | string[] | undefined> },
  limits: JsonLimits,
): Promise<string> {
  const scanner = createJsonLimitScanner(limits);
  const announced = Number(req.headers["content-length"] ?? Number.NaN);
  if (announced > limits.maxBytes) {
    return Promise.reject(
      new JsonLimitError(
        "bytes",
        `the JSON body exceeds ${limits.maxBytes} bytes (max request bytes: ${kJsonBytesSetting})`,
      ),
    );
  }
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
    };
    const onData = (part: Buffer) => {
      try {
        scanner.push(part);
      } catch (err) {
        cleanup();
        req.pause();
        parts.length = 0;
        reject(err);
        return;
      }
      parts.push(part);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(parts).toString("utf8"));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", onError);
  });
}
