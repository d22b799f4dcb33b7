import {
  Code,
  ConnectError,
  createClient,
  createContextKey,
  createContextValues,
  createServiceImplSpec,
  type Interceptor,
  type ServiceImpl,
} from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import type { HttpBody } from "../../gen/google/api/httpbody_pb.js";
import { TtsService } from "../../gen/voxgate/v1/tts_pb.js";
import { createInProcessTransport } from "./in-process-transport.js";

const kCaller = createContextKey("nobody");

/** A TtsService that echoes the caller from context values and streams the text back in pieces. */
const echoTts: ServiceImpl<typeof TtsService> = {
  synthesize(request, context) {
    context.responseHeader.set("x-voxgate-backend", "echo");
    if (!request.text) throw new ConnectError("text is empty", Code.InvalidArgument);
    return {
      contentType: context.values.get(kCaller),
      data: new TextEncoder().encode(request.text),
    };
  },
  async *streamSynthesize(request, context) {
    context.responseHeader.set("x-voxgate-backend", "echo");
    for (const word of request.text.split(" ")) yield { data: new TextEncoder().encode(word) };
  },
};

function setup() {
  const seen: string[] = [];
  const recorder: Interceptor = (next) => async (req) => {
    seen.push(`${req.method.name}:${req.contextValues.get(kCaller)}`);
    return next(req);
  };
  const transport = createInProcessTransport({
    services: [createServiceImplSpec<typeof TtsService>(TtsService, echoTts)],
    interceptors: [recorder],
  });
  return { client: createClient(TtsService, transport), seen };
}

describe("createInProcessTransport", () => {
  it("runs unary calls through the interceptors with the caller's context values", async () => {
    const { client, seen } = setup();
    let header: Headers | undefined;
    const body: HttpBody = await client.synthesize(
      { text: "hello" },
      { contextValues: createContextValues().set(kCaller, "alice"), onHeader: (h) => (header = h) },
    );
    expect(body.contentType).toBe("alice");
    expect(new TextDecoder().decode(body.data)).toBe("hello");
    expect(header?.get("x-voxgate-backend")).toBe("echo");
    expect(seen).toEqual(["Synthesize:alice"]);
  });

  it("streams server messages in order", async () => {
    const { client, seen } = setup();
    const words: string[] = [];
    for await (const chunk of client.streamSynthesize({ text: "one two three" })) {
      words.push(new TextDecoder().decode(chunk.data));
    }
    expect(words).toEqual(["one", "two", "three"]);
    expect(seen).toEqual(["StreamSynthesize:nobody"]);
  });

  it("passes handler errors through with their code", async () => {
    const { client } = setup();
    const error = await client
      .synthesize({ text: "" })
      .catch((err: unknown) => ConnectError.from(err));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
  });

  it("answers UNIMPLEMENTED for a service it does not hold", async () => {
    const transport = createInProcessTransport({ services: [], interceptors: [] });
    const client = createClient(TtsService, transport);
    const error = await client
      .synthesize({ text: "hi" })
      .catch((err: unknown) => ConnectError.from(err));
    expect((error as ConnectError).code).toBe(Code.Unimplemented);
  });
});
