import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { SynthesizeSpeechRequestSchema } from "../../gen/voxgate/v1/tts_pb.js";
import { guardRpcBody, rpcBodyFormat } from "./rpc-body-guard.js";

const limits = { maxDepth: 4, maxBytes: 1024 };
const input = SynthesizeSpeechRequestSchema;

function envelope(payload: Uint8Array, flags = 0): Uint8Array {
  const frame = Buffer.alloc(5 + payload.length);
  frame[0] = flags;
  frame.writeUInt32BE(payload.length, 1);
  frame.set(payload, 5);
  return frame;
}

/** Feeds `bytes` cut into pieces of `size` and returns what the guard passes on (or its error). */
async function run(contentType: string, bytes: Uint8Array, size: number) {
  const format = rpcBodyFormat(contentType);
  if (!format) throw new Error("no format");
  async function* pieces() {
    for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
  }
  const out: Uint8Array[] = [];
  try {
    for await (const piece of guardRpcBody(pieces(), { input, format, limits })) out.push(piece);
  } catch (err) {
    return ConnectError.from(err);
  }
  return Buffer.concat(out);
}

describe("guardRpcBody", () => {
  const valid = toBinary(input, create(input, { text: "hello there" }));
  const garbage = new Uint8Array(16).fill(0xff);

  it("passes valid binary frames through unchanged, however the body is cut", async () => {
    const body = Buffer.concat([envelope(valid), envelope(new Uint8Array()), envelope(valid)]);
    for (const size of [1, 2, 5, 7, 100]) {
      expect(await run("application/grpc", body, size)).toEqual(body);
    }
    expect(await run("application/proto", valid, 3)).toEqual(Buffer.from(valid));
  });

  it("refuses a malformed binary message with INVALID_ARGUMENT, in any frame", async () => {
    for (const size of [1, 6, 100]) {
      const err = await run(
        "application/grpc-web+proto",
        Buffer.concat([envelope(valid), envelope(garbage)]),
        size,
      );
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    }
    expect(((await run("application/proto", garbage, 4)) as ConnectError).code).toBe(
      Code.InvalidArgument,
    );
  });

  it("leaves compressed frames to connect-node", async () => {
    const body = envelope(garbage, 1);
    expect(await run("application/grpc", body, 3)).toEqual(Buffer.from(body));
  });

  it("refuses JSON nesting past the limit per message, resetting between frames", async () => {
    const ok = Buffer.from('{"text":[[[1]]]}');
    const deep = Buffer.from('{"text":[[[[1]]]]}');
    const fine = Buffer.concat([envelope(ok), envelope(ok)]);
    expect(await run("application/connect+json", fine, 3)).toEqual(fine);
    const err = await run(
      "application/connect+json",
      Buffer.concat([envelope(ok), envelope(deep)]),
      3,
    );
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect((err as ConnectError).rawMessage).toContain("VOXGATE_MAX_JSON_DEPTH");
    expect(((await run("application/json", deep, 2)) as ConnectError).code).toBe(
      Code.InvalidArgument,
    );
  });

  it("knows which content types it checks", () => {
    expect(rpcBodyFormat("application/grpc-web-text")).toBeUndefined();
    expect(rpcBodyFormat("application/json; charset=utf-8")).toEqual({
      enveloped: false,
      json: true,
    });
  });
});
