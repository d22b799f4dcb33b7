import { type DescMessage, fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { createJsonLimitScanner, isJsonLimitError, type JsonLimits } from "./json-limits.js";

/** How a Connect, gRPC or gRPC-Web request body is framed and encoded. */
interface BodyFormat {
  /** Messages sit in 5-byte-prefixed envelopes (streaming Connect, gRPC, gRPC-Web). */
  enveloped: boolean;
  /** JSON (else binary protobuf). */
  json: boolean;
}

/**
 * The framing and encoding a Content-Type announces, or undefined for one this guard leaves alone
 * (gRPC-Web text, unknown types: connect-node refuses those itself).
 */
export function rpcBodyFormat(contentType: string): BodyFormat | undefined {
  const type = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  switch (type) {
    case "application/json":
      return { enveloped: false, json: true };
    case "application/proto":
      return { enveloped: false, json: false };
    case "application/connect+json":
    case "application/grpc+json":
    case "application/grpc-web+json":
      return { enveloped: true, json: true };
    case "application/connect+proto":
    case "application/grpc":
    case "application/grpc+proto":
    case "application/grpc-web":
    case "application/grpc-web+proto":
      return { enveloped: true, json: false };
    default:
      return undefined;
  }
}

/** Options of {@link guardRpcBody}. */
export interface RpcBodyGuardOptions {
  /** Request message of the method, to check binary messages against. */
  input: DescMessage;
  /** Framing and encoding, from {@link rpcBodyFormat}. */
  format: BodyFormat;
  /** JSON limits (the byte limit applies to each message). */
  limits: JsonLimits;
}

const ENVELOPE_HEADER_BYTES = 5;
const FLAG_COMPRESSED = 0x01;

/**
 * Wraps a request body on its way into connect-node, checking each message while it is read:
 * JSON nesting and size are scanned piece by piece, so a deep or huge JSON message is refused
 * with INVALID_ARGUMENT (naming the limit and its setting) before connect-node buffers all of it
 * and `JSON.parse` builds it; a binary message that is not a valid protobuf of the method's
 * request is refused with INVALID_ARGUMENT (connect-node itself reports it as INTERNAL, a 500,
 * though the fault is the client's). Compressed envelopes pass untouched: the gateway accepts no
 * compression, so connect-node refuses them.
 */
export async function* guardRpcBody(
  body: AsyncIterable<Uint8Array>,
  options: RpcBodyGuardOptions,
): AsyncGenerator<Uint8Array> {
  const { format, input, limits } = options;
  const scanner = createJsonLimitScanner(limits);
  const scanJson = (bytes: Uint8Array) => {
    try {
      scanner.push(bytes);
    } catch (err) {
      if (isJsonLimitError(err)) throw new ConnectError(err.message, Code.InvalidArgument);
      throw err;
    }
  };
  const checkBinary = (parts: Uint8Array[]) => {
    const bytes = parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts);
    try {
      fromBinary(input, bytes);
    } catch (err) {
      throw new ConnectError(
        `the request is not a valid ${input.typeName} protobuf message: ${(err as Error).message}`,
        Code.InvalidArgument,
      );
    }
  };

  if (!format.enveloped) {
    if (format.json) {
      for await (const chunk of body) {
        scanJson(chunk);
        yield chunk;
      }
      return;
    }
    // A unary binary body is read whole by connect-node anyway: hold it, check it, hand it on.
    const parts: Uint8Array[] = [];
    for await (const chunk of body) parts.push(chunk);
    if (parts.length > 0) checkBinary(parts);
    yield* parts;
    return;
  }

  // Enveloped: walk the frames. A frame's 5 header bytes give its flags and length; binary
  // frames are held until whole and checked, everything else passes as it comes.
  const header = new Uint8Array(ENVELOPE_HEADER_BYTES);
  let headerFill = 0;
  let remaining = 0;
  let inPayload = false;
  let check = false;
  let held: Uint8Array[] = [];
  for await (const chunk of body) {
    let offset = 0;
    let flushFrom = 0;
    const out: Uint8Array[] = [];
    // Hands on what is held plus this chunk up to `offset`.
    const release = () => {
      out.push(...held, chunk.subarray(flushFrom, offset));
      held = [];
      flushFrom = offset;
    };
    while (offset < chunk.length) {
      if (!inPayload) {
        const take = Math.min(ENVELOPE_HEADER_BYTES - headerFill, chunk.length - offset);
        header.set(chunk.subarray(offset, offset + take), headerFill);
        headerFill += take;
        offset += take;
        if (headerFill < ENVELOPE_HEADER_BYTES) break;
        headerFill = 0;
        remaining = new DataView(header.buffer).getUint32(1);
        check = ((header[0] as number) & FLAG_COMPRESSED) === 0;
        scanner.reset();
        inPayload = remaining > 0;
        if (!inPayload && check && !format.json) checkBinary([]);
        if (!inPayload || !check || format.json) release();
        continue;
      }
      const take = Math.min(remaining, chunk.length - offset);
      const piece = chunk.subarray(offset, offset + take);
      offset += take;
      remaining -= take;
      if (check && format.json) scanJson(piece);
      if (remaining === 0) {
        inPayload = false;
        if (check && !format.json) {
          checkBinary(payloadOf([...held, chunk.subarray(flushFrom, offset)]));
        }
        release();
      }
    }
    const holding = !format.json && (headerFill > 0 || (inPayload && check));
    if (holding) {
      held.push(chunk.subarray(flushFrom));
    } else {
      offset = chunk.length;
      release();
    }
    for (const piece of out) if (piece.length > 0) yield piece;
  }
  // A truncated last frame: hand it on, connect-node reports the protocol error.
  yield* held;
}

/** The payload of one held frame: its pieces without the 5 envelope header bytes. */
function payloadOf(held: Uint8Array[]): Uint8Array[] {
  let skip = ENVELOPE_HEADER_BYTES;
  const payload: Uint8Array[] = [];
  for (const piece of held) {
    if (skip >= piece.length) {
      skip -= piece.length;
      continue;
    }
    payload.push(piece.subarray(skip));
    skip = 0;
  }
  return payload;
}
