import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { HttpBodySchema } from "../../gen/google/api/httpbody_pb.js";
import {
  type Prompt,
  type PromptMetadata as PromptMetadataMessage,
  PromptSchema,
  type PromptStoreService,
  type PutPromptRequest,
} from "../../gen/voxgate/v1/prompt_store_pb.js";
import type { Principal } from "../auth/token-store.js";
import { kCallContext } from "../gateway/call-context.js";
import { pageSizeOf } from "../paging/index.js";
import { toPromptRpcError } from "./prompt-rpc-error.js";
import type { PromptMetadata, PromptRecord, PromptStore } from "./prompt-store.js";

/** PromptStoreService methods about named prompts, served by `createNamedPromptMethods`. */
export type NamedPromptMethod =
  | "createNamedPrompt"
  | "namePrompt"
  | "getNamedPrompt"
  | "listNamedPrompts"
  | "deleteNamedPrompt";

/** The PromptStoreService methods about prompt blobs (by digest). */
export type PromptBlobMethods = Omit<ServiceImpl<typeof PromptStoreService>, NamedPromptMethod>;

/** Options of {@link createPromptStoreHandler}. */
export interface PromptStoreHandlerOptions {
  /** Where prompts live. */
  store: PromptStore;
  /**
   * The store as one caller may see it (tenant ownership); `store` for everyone when omitted.
   * Called per call with the call's principal (undefined for in-gateway calls).
   */
  storeFor?: ((principal: Principal | undefined) => PromptStore) | undefined;
}

/**
 * Creates the PromptStoreService implementation (scope voices). PutPrompt takes the metadata as
 * its first message and bytes after it, streaming them into the store as they arrive (the store
 * enforces `maxPromptBytes`); GetPrompt streams `HttpBody` chunks whose first carries the content
 * type, and ends with DATA_LOSS if the stored bytes fail their sha256.
 */
export function createPromptStoreHandler(options: PromptStoreHandlerOptions): PromptBlobMethods {
  const storeOf = (context: HandlerContext): PromptStore =>
    options.storeFor?.(context.values.get(kCallContext)?.principal) ?? options.store;
  const guard = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (err) {
      throw toPromptRpcError(err);
    }
  };
  return {
    putPrompt(requests, context) {
      return guard(async () => {
        const iterator = requests[Symbol.asyncIterator]();
        const first = await iterator.next();
        if (first.done || first.value.kind.case !== "metadata") {
          throw new ConnectError(
            "the first PutPrompt message must carry metadata",
            Code.InvalidArgument,
          );
        }
        const metadata = fromMetadataMessage(first.value.kind.value);
        const { prompt } = await storeOf(context).put(dataOf(iterator), metadata, {
          signal: context.signal,
        });
        return { prompt: toPromptMessage(prompt) };
      });
    },

    async *getPrompt(request, context) {
      let first = true;
      try {
        const { prompt, chunks } = await storeOf(context).get(request.digest, {
          signal: context.signal,
        });
        for await (const chunk of chunks) {
          yield create(HttpBodySchema, {
            contentType: first ? prompt.metadata.contentType : "",
            data: chunk,
          });
          first = false;
        }
        if (first) yield create(HttpBodySchema, { contentType: prompt.metadata.contentType });
      } catch (err) {
        throw toPromptRpcError(err);
      }
    },

    statPrompt(request, context) {
      return guard(async () => {
        const prompt = await storeOf(context).stat(request.digest);
        if (!prompt) {
          throw new ConnectError(`prompt ${request.digest} does not exist`, Code.NotFound);
        }
        return { prompt: toPromptMessage(prompt) };
      });
    },

    listPrompts(request, context) {
      return guard(async () => {
        const page = await storeOf(context).list({
          pageSize: pageSizeOf(request.pageSize),
          pageToken: request.pageToken,
          modelFamily: request.modelFamily,
        });
        return { prompts: page.prompts.map(toPromptMessage), nextPageToken: page.nextPageToken };
      });
    },

    deletePrompt(request, context) {
      return guard(async () => {
        if (!(await storeOf(context).delete(request.digest))) {
          throw new ConnectError(`prompt ${request.digest} does not exist`, Code.NotFound);
        }
        return {};
      });
    },
  };
}

/** Data chunks of the rest of a PutPrompt stream; a second metadata message is refused. */
async function* dataOf(iterator: AsyncIterator<PutPromptRequest>): AsyncGenerator<Uint8Array> {
  for (;;) {
    const next = await iterator.next();
    if (next.done) return;
    if (next.value.kind.case !== "data") {
      throw new ConnectError("PutPrompt takes metadata once, first", Code.InvalidArgument);
    }
    if (next.value.kind.value.byteLength > 0) yield next.value.kind.value;
  }
}

/** Maps the wire metadata to the store's. */
export function fromMetadataMessage(m: PromptMetadataMessage): PromptMetadata {
  return {
    name: m.name,
    referenceText: m.referenceText,
    modelFamily: m.model?.family ?? "",
    modelSize: m.model?.size ?? "",
    engine: m.engine,
    contentType: m.contentType,
    tags: { ...m.tags },
  };
}

/** Maps a stored prompt to the wire message. */
export function toPromptMessage(p: PromptRecord): Prompt {
  return create(PromptSchema, {
    digest: p.digest,
    sizeBytes: BigInt(p.sizeBytes),
    createTime: timestampFromDate(p.createTime),
    metadata: {
      name: p.metadata.name,
      model: { family: p.metadata.modelFamily, size: p.metadata.modelSize },
      engine: p.metadata.engine,
      referenceText: p.metadata.referenceText,
      contentType: p.metadata.contentType,
      tags: p.metadata.tags,
    },
  });
}
