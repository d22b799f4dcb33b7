import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  PromptStoreService,
  type PutPromptRequest,
  PutPromptRequestSchema,
} from "../../gen/voxgate/v1/prompt_store_pb.js";
import type { BlobStore } from "../../services/object-store/blob-store.js";
import { createFsBlobStore } from "../../services/object-store/fs-blob-store.js";
import {
  createPromptStore,
  createPromptStoreHandler,
  promptBlobKey,
} from "../../services/prompt-store/index.js";

const MAX_PROMPT_BYTES = 256 * 1024;

function metadataMessage(name = "narrator"): PutPromptRequest {
  return create(PutPromptRequestSchema, {
    kind: {
      case: "metadata",
      value: {
        name,
        engine: "cpu-clone",
        model: { family: "cpu-clone", size: "" },
        referenceText: "the quick brown fox",
        contentType: "application/json",
        tags: { speaker: "ada" },
      },
    },
  });
}

function dataMessage(data: Uint8Array): PutPromptRequest {
  return create(PutPromptRequestSchema, { kind: { case: "data", value: data } });
}

async function* stream(...messages: PutPromptRequest[]) {
  yield* messages;
}

async function errorOf(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail");
}

/** Every file under `dir`, relative: what the store holds. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

describe("PromptStoreService handler", () => {
  let dir: string;
  let blobs: BlobStore;
  let client: ReturnType<typeof createClient<typeof PromptStoreService>>;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "voxgate-prompt-handler-"));
    blobs = createFsBlobStore({ rootDir: dir });
    const store = createPromptStore({
      blobs,
      maxPromptBytes: MAX_PROMPT_BYTES,
      maxMetadataBytes: 4096,
    });
    const transport = createRouterTransport(({ service }) => {
      service(PromptStoreService, createPromptStoreHandler({ store }));
    });
    client = createClient(PromptStoreService, transport);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("puts a streamed prompt, then stats, gets, lists and deletes it", async () => {
    const data = randomBytes(100_000);
    const digest = createHash("sha256").update(data).digest("hex");
    const put = await client.putPrompt(
      stream(
        metadataMessage(),
        dataMessage(data.subarray(0, 30_000)),
        dataMessage(data.subarray(30_000, 60_000)),
        dataMessage(data.subarray(60_000)),
      ),
    );
    expect(put.prompt?.digest).toBe(digest);
    expect(put.prompt?.sizeBytes).toBe(100_000n);
    expect(put.prompt?.metadata?.model?.family).toBe("cpu-clone");
    expect(put.prompt?.metadata?.tags).toEqual({ speaker: "ada" });

    const again = await client.putPrompt(stream(metadataMessage("other"), dataMessage(data)));
    expect(again.prompt?.digest).toBe(digest);
    expect(again.prompt?.metadata?.name).toBe("narrator");

    const stat = await client.statPrompt({ digest });
    expect(stat.prompt?.metadata?.referenceText).toBe("the quick brown fox");

    const chunks = [];
    for await (const chunk of client.getPrompt({ digest })) chunks.push(chunk);
    expect(chunks[0]?.contentType).toBe("application/json");
    expect(Buffer.concat(chunks.map((c) => c.data)).equals(data)).toBe(true);

    const list = await client.listPrompts({ pageSize: 10 });
    expect(list.prompts.map((p) => p.digest)).toEqual([digest]);
    expect((await client.listPrompts({ modelFamily: "qwen3-tts" })).prompts).toEqual([]);

    await client.deletePrompt({ digest });
    expect((await errorOf(client.statPrompt({ digest }))).code).toBe(Code.NotFound);
    expect((await errorOf(client.deletePrompt({ digest }))).code).toBe(Code.NotFound);
    expect(filesUnder(dir).filter((f) => !f.startsWith("tmp"))).toEqual([]);
  });

  it("refuses an upload that does not start with metadata, storing nothing", async () => {
    const error = await errorOf(client.putPrompt(stream(dataMessage(randomBytes(10)))));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe("the first PutPrompt message must carry metadata");
    const empty = await errorOf(client.putPrompt(stream()));
    expect(empty.code).toBe(Code.InvalidArgument);
    expect(filesUnder(dir)).toEqual([]);
  });

  it("refuses metadata sent twice, storing nothing", async () => {
    const error = await errorOf(
      client.putPrompt(stream(metadataMessage(), dataMessage(randomBytes(10)), metadataMessage())),
    );
    expect(error.code).toBe(Code.InvalidArgument);
    expect(filesUnder(dir).filter((f) => !f.startsWith("tmp"))).toEqual([]);
  });

  it("refuses an oversized upload with RESOURCE_EXHAUSTED before reading all of it", async () => {
    let sent = 0;
    async function* huge() {
      yield metadataMessage();
      for (let i = 0; i < 1000; i++) {
        sent += 16 * 1024;
        yield dataMessage(Buffer.alloc(16 * 1024, i));
      }
    }
    const error = await errorOf(client.putPrompt(huge()));
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.rawMessage).toContain("VOXGATE_MAX_PROMPT_BYTES");
    expect(error.rawMessage).toContain(String(MAX_PROMPT_BYTES));
    // 16 MB were on offer; the refusal came right after the 256 KiB limit.
    expect(sent).toBeLessThan(2 * MAX_PROMPT_BYTES);
    expect(filesUnder(dir).filter((f) => !f.startsWith("tmp"))).toEqual([]);
  });

  it.each(["../../etc/passwd", "ABCDEF", "", `${"0".repeat(64)}/../x`])(
    "refuses the digest %j with INVALID_ARGUMENT",
    async (digest) => {
      for (const call of [
        client.statPrompt({ digest }),
        client.deletePrompt({ digest }),
        (async () => {
          for await (const _ of client.getPrompt({ digest })) {
            // never reached
          }
        })(),
      ]) {
        const error = await errorOf(call);
        expect(error.code).toBe(Code.InvalidArgument);
        expect(error.rawMessage).toBe("digest must be the 64 lowercase hex characters of a sha256");
      }
    },
  );

  it("answers NOT_FOUND for a well-formed digest nobody stored", async () => {
    const error = await errorOf(client.statPrompt({ digest: "f".repeat(64) }));
    expect(error.code).toBe(Code.NotFound);
  });

  it("ends a read of corrupted bytes with DATA_LOSS", async () => {
    const data = randomBytes(20_000);
    const put = await client.putPrompt(stream(metadataMessage(), dataMessage(data)));
    const digest = put.prompt?.digest ?? "";
    const forged = Buffer.from(data);
    forged[0] = (forged[0] ?? 0) ^ 1;
    await blobs.put(promptBlobKey(digest), forged, { contentType: "application/json" });
    const error = await errorOf(
      (async () => {
        for await (const _ of client.getPrompt({ digest })) {
          // drain
        }
      })(),
    );
    expect(error.code).toBe(Code.DataLoss);
  });

  it("refuses page tokens it did not issue and negative page sizes", async () => {
    expect((await errorOf(client.listPrompts({ pageToken: "nope!" }))).code).toBe(
      Code.InvalidArgument,
    );
    expect((await errorOf(client.listPrompts({ pageSize: -1 }))).code).toBe(Code.InvalidArgument);
  });
});
