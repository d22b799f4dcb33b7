import type { NodeRequest, NodeResponse } from "../auth/rpc-error-response.js";
import { isJsonLimitError, type JsonLimits, readJsonText } from "../input-limits/index.js";
import { badRequest, RelayError, writeRelayError } from "./relay-error.js";

const tooLarge = (maxBytes: number) =>
  new RelayError(
    `the request body exceeds ${maxBytes} bytes (max request bytes: VOXGATE_MAX_REQUEST_BYTES)`,
    413,
    "request_too_large",
  );

/**
 * Reads a request body of at most `maxBytes`. A larger one is answered 413 as soon as it shows
 * (by its Content-Length or while reading); the rest is dropped up to the discard limit.
 */
export async function readBody(
  req: NodeRequest,
  res: NodeResponse,
  maxBytes: number,
): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? Number.NaN);
  if (declared > maxBytes) throw tooLarge(maxBytes);
  return new Promise<Buffer>((resolve, reject) => {
    const parts: Buffer[] = [];
    let total = 0;
    const onData = (part: Buffer) => {
      total += part.byteLength;
      if (total <= maxBytes) {
        parts.push(part);
        return;
      }
      req.off("data", onData);
      req.off("end", onEnd);
      writeRelayError(req, res, tooLarge(maxBytes));
      reject(tooLarge(maxBytes));
    };
    const onEnd = () => resolve(Buffer.concat(parts));
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", reject);
  });
}

/**
 * Reads a JSON object body within `limits` (the shared input-limits scanner: size and nesting are
 * checked while it arrives, before it is parsed; 413 or 400 answered at once). Relay clients send
 * JSON without always saying so (aiohttp's `data=`), so the Content-Type is not required; an empty
 * body is `{}` (warmup posts none).
 */
export async function readJsonObject(
  req: NodeRequest,
  res: NodeResponse,
  limits: JsonLimits,
): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readJsonText(req, limits);
  } catch (err) {
    if (!isJsonLimitError(err)) throw err;
    const error =
      err.limit === "bytes"
        ? new RelayError(err.message, 413, "request_too_large")
        : badRequest(err.message);
    writeRelayError(req, res, error);
    throw error;
  }
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw badRequest(`the request body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw badRequest("the request body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

/** One part of a `multipart/form-data` body. */
export interface FormPart {
  /** Field name. */
  name: string;
  /** File name, when the part is a file. */
  filename: string | undefined;
  /** Content-Type of the part, empty when not given. */
  contentType: string;
  /** The bytes. */
  data: Buffer;
}

/** Most parts a form may have (the relay's clone form has two). */
const MAX_FORM_PARTS = 16;

/**
 * Parses a whole `multipart/form-data` body (already bounded by {@link readBody}).
 * @throws RelayError 400 for a body that is not well-formed multipart.
 */
export function parseMultipart(body: Buffer, contentType: string): FormPart[] {
  const boundary = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType);
  const token = boundary?.[1] ?? boundary?.[2];
  if (!token) throw badRequest("multipart/form-data without a boundary");
  const delimiter = Buffer.from(`--${token}`);
  const parts: FormPart[] = [];
  let at = body.indexOf(delimiter);
  if (at < 0) throw badRequest("multipart body without its boundary");
  for (;;) {
    at += delimiter.length;
    if (body.subarray(at, at + 2).toString() === "--") return parts;
    if (body.subarray(at, at + 2).toString() !== "\r\n") throw badRequest("malformed multipart");
    at += 2;
    const headerEnd = body.indexOf("\r\n\r\n", at);
    if (headerEnd < 0) throw badRequest("malformed multipart part headers");
    const headers = body.subarray(at, headerEnd).toString("utf8");
    const next = body.indexOf(Buffer.concat([Buffer.from("\r\n"), delimiter]), headerEnd + 4);
    if (next < 0) throw badRequest("multipart body is not terminated");
    const disposition = /content-disposition:\s*form-data([^\r\n]*)/i.exec(headers)?.[1] ?? "";
    const name = /;\s*name="([^"]*)"/i.exec(disposition)?.[1];
    if (name === undefined) throw badRequest("multipart part without a name");
    parts.push({
      name,
      filename: /;\s*filename="([^"]*)"/i.exec(disposition)?.[1],
      contentType: /content-type:\s*([^\r\n]*)/i.exec(headers)?.[1]?.trim() ?? "",
      data: body.subarray(headerEnd + 4, next),
    });
    if (parts.length > MAX_FORM_PARTS) {
      throw badRequest(`a form may have at most ${MAX_FORM_PARTS} parts`);
    }
    at = next + 2;
  }
}
