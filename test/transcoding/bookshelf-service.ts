/**
 * Test helper: a BookshelfService implementation (test/proto) for the transcoder's conformance
 * tests. It echoes what it received so tests can see how each HTTP request was mapped, and records
 * every call.
 */
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { kCallContext } from "../../services/gateway/call-context.js";
import { type BookshelfService, ShelfSchema } from "../gen/voxgate/testing/v1/bookshelf_pb.js";

/** One recorded call: the RPC name and the request it received. */
export interface BookshelfCall {
  /** RPC name, e.g. "GetShelf". */
  rpc: string;
  /** The request message. */
  request: unknown;
}

/** Creates the service and the list of calls it records. */
export function createBookshelfService(): {
  impl: ServiceImpl<typeof BookshelfService>;
  calls: BookshelfCall[];
} {
  const calls: BookshelfCall[] = [];
  const record = (rpc: string, request: unknown) => calls.push({ rpc, request });
  const impl: ServiceImpl<typeof BookshelfService> = {
    getShelf(request, context) {
      record("GetShelf", request);
      if (request.name === "shelves/missing") {
        throw new ConnectError(`shelf "${request.name}" does not exist`, Code.NotFound);
      }
      context.responseHeader.set("x-voxgate-backend", "shelf-backend-1");
      return { name: request.name, title: `Shelf ${request.name}`, via: "GetShelf" };
    },
    getFeaturedShelf(request, context) {
      record("GetFeaturedShelf", request);
      // The deadline the handler sees, so tests can check the timeout header and its cap.
      return {
        name: "shelves/featured",
        title: String(context.timeoutMs() ?? "none"),
        via: "GetFeaturedShelf",
      };
    },
    getShelfTitle(request) {
      record("GetShelfTitle", request);
      return { name: request.name, title: `Title of ${request.name}` };
    },
    listBooks(request) {
      record("ListBooks", request);
      return { request };
    },
    createBook(request) {
      record("CreateBook", request);
      const book = request.book;
      return {
        shelf: request.parent,
        id: book?.id ?? "",
        title: book?.title ?? "",
        genre: book?.genre ?? 0,
        pages: book?.pages ?? 0n,
        ...(book?.author ? { author: book.author } : {}),
        tags: [...(book?.tags ?? []), request.requestId],
      };
    },
    updateBook(request) {
      record("UpdateBook", request);
      return request.book ?? {};
    },
    replaceBook(request) {
      record("ReplaceBook", request);
      return { shelf: request.shelf, id: request.id, title: request.title, genre: request.genre };
    },
    deleteBook(request) {
      record("DeleteBook", request);
      return { name: request.name };
    },
    archiveShelf(request) {
      record("ArchiveShelf", request);
      return { name: request.name, archived: true, title: request.reason, via: "ArchiveShelf" };
    },
    linkShelf(request, context) {
      record("LinkShelf", request);
      const call = context.values.get(kCallContext);
      return { name: request.name, title: call?.requestId ?? "", via: "LinkShelf" };
    },
    getFile(request) {
      record("GetFile", request);
      return { contentType: "text/plain", data: Buffer.from(`file:${request.path}`) };
    },
    uploadFile(request) {
      record("UploadFile", request);
      const data = request.content?.data ?? new Uint8Array(0);
      return {
        name: request.name,
        sizeBytes: BigInt(data.byteLength),
        contentType: request.content?.contentType ?? "",
        sha256: createHash("sha256").update(data).digest("hex"),
      };
    },
    async *streamBooks(request) {
      record("StreamBooks", request);
      for (let i = 0; i < request.count; i++) {
        if (request.failAfter === i) {
          throw new ConnectError(`stopped after ${i} books`, Code.DataLoss);
        }
        await sleep(2);
        yield { shelf: request.parent, id: `b${i}`, title: `Book ${i}` };
      }
    },
    async *streamFile(request, context) {
      record("StreamFile", request);
      for (let i = 0; i < request.chunks; i++) {
        if (request.failAfter === i) {
          throw new ConnectError(`stopped after ${i} chunks`, Code.Unavailable);
        }
        await sleep(5, undefined, { signal: context.signal });
        yield {
          contentType: i === 0 ? request.contentType : "",
          data: new Uint8Array(request.chunkBytes).fill(i % 256),
        };
      }
    },
    fail(request) {
      record("Fail", request);
      throw new ConnectError(`failing with code ${request.code}`, request.code as Code, undefined, [
        { desc: ShelfSchema, value: { name: "detail" } },
      ]);
    },
  };
  return { impl, calls };
}
