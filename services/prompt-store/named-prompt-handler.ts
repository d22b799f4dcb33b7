import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  type NamedPrompt,
  NamedPromptSchema,
  type PromptStoreService,
} from "../../gen/voxgate/v1/prompt_store_pb.js";
import { tenantViewOf } from "../auth/tenant-view.js";
import type { Principal } from "../auth/token-store.js";
import { kCallContext } from "../gateway/call-context.js";
import { pageSizeOf } from "../paging/index.js";
import type { BackendRegistry } from "../registry/index.js";
import { createClonePrompt } from "../voices/clone-prompt-call.js";
import { isDigest } from "../voices/voice-id.js";
import { checkUploadSize } from "../voices/voice-request-checks.js";
import type { VoiceAudioTools, VoicePromptStore } from "../voices/voice-storage.js";
import { checkPromptName, checkTagsAndLabels } from "./named-prompt-checks.js";
import { promptBlobKey } from "./prompt-keys.js";
import type { PromptNameRecord, PromptNameRepository } from "./prompt-name-repository.js";
import type { NamedPromptMethod } from "./prompt-store-handler.js";

/** A stored prompt as naming needs it. */
export interface DescribedPrompt {
  /** sha256 of the bytes. */
  digest: string;
  /** Size, in bytes. */
  sizeBytes: number;
  /** Model that made it. */
  model: { family: string; size: string };
  /** Engine that made it. */
  engine: string;
  /** Transcript of the reference audio. */
  referenceText: string;
}

/** Options of {@link createNamedPromptMethods}. */
export interface NamedPromptMethodsOptions {
  /** Name rows. */
  names: PromptNameRepository;
  /** Prompt bytes (stat, put, delete). */
  prompts: VoicePromptStore;
  /**
   * What the prompt store knows of a prompt as `principal` sees it, or undefined when it is not
   * stored or not the caller's (another tenant's prompt is as good as missing).
   */
  describePrompt(
    digest: string,
    principal: Principal | undefined,
  ): Promise<DescribedPrompt | undefined>;
  /**
   * Records that `tenant` owns the prompt `digest` (as an upload would), with what it called it.
   */
  addOwner(
    digest: string,
    tenant: string,
    metadata: { name: string; referenceText: string; tags: Record<string, string> },
  ): Promise<unknown>;
  /** Forgets that `tenant` owns `digest`; resolves with how many tenants still own it. */
  removeOwner(digest: string, tenant: string): Promise<number>;
  /** Whether a voice still speaks with a prompt (its bytes then stay when a name goes). */
  promptInUseByVoice(digest: string): Promise<boolean>;
  /** Registry whose backends make clone prompts. */
  registry: BackendRegistry;
  /** Audio checks (type by magic bytes, duration). */
  audio: VoiceAudioTools;
  /** Upload and prompt limits. */
  limits: { maxReferenceBytes: number; maxReferenceSeconds: number; maxPromptBytes: number };
  /** Deadline of calls whose client set none, in ms (making a prompt waits for a backend). */
  defaultTimeoutMs: number;
}

/**
 * Creates the named-prompt methods of PromptStoreService (scope voices). A name belongs to the
 * caller (token name) and is unique for it; other callers neither see nor reach it. Deleting the
 * last name of a prompt deletes its bytes unless a cloned voice speaks with them.
 */
export function createNamedPromptMethods(
  options: NamedPromptMethodsOptions,
): Pick<ServiceImpl<typeof PromptStoreService>, NamedPromptMethod> {
  const { names, prompts, limits } = options;

  // Names belong to the caller's tenant; admins name in their own tenant too (a name is an
  // address, and one namespace per tenant keeps `voice_prompt` unambiguous).
  const callerOf = (context: HandlerContext) => {
    const call = context.values.get(kCallContext);
    return {
      principal: call?.principal,
      owner: tenantViewOf(call?.principal).tenant,
      requestId: call?.requestId ?? "",
      log: call?.log,
    };
  };
  const notFound = (name: string) =>
    new ConnectError(`prompt "${name}" does not exist`, Code.NotFound);
  const taken = (name: string) =>
    new ConnectError(
      `a prompt named "${name}" exists already; delete it or set replace`,
      Code.AlreadyExists,
    );

  /**
   * After `owner` lost a name of `digest`: its ownership goes with its last name of it, and the
   * bytes go when nothing points at them any more (no name, no voice, no tenant's upload).
   */
  const collect = async (digest: string, owner: string) => {
    if ((await names.countUsing(digest, owner)) > 0) return;
    const owners = await options.removeOwner(digest, owner);
    if (owners > 0 || (await names.countUsing(digest)) > 0) return;
    if (await options.promptInUseByVoice(digest)) return;
    await prompts.delete(digest);
  };

  const give = async (
    record: PromptNameRecord,
    replace: boolean,
    context: HandlerContext,
  ): Promise<NamedPrompt> => {
    const result = await names.put(record, replace);
    if (result.conflict) throw taken(record.name);
    await options.addOwner(record.digest, record.owner, {
      name: record.name,
      referenceText: record.referenceText,
      tags: { ...record.labels },
    });
    if (result.previous && result.previous.digest !== record.digest) {
      await collect(result.previous.digest, record.owner);
    }
    callerOf(context).log?.info(
      { prompt: record.name, digest: record.digest, replaced: result.previous !== undefined },
      "prompt named",
    );
    return toNamedPromptMessage(result.record);
  };

  return {
    async createNamedPrompt(request, context) {
      checkUploadSize(
        "reference_audio",
        request.referenceAudio.byteLength,
        limits.maxReferenceBytes,
      );
      checkPromptName(request.name);
      const tags = checkTagsAndLabels(request.tags, request.labels);
      const caller = callerOf(context);
      if (!request.replace && (await names.get(caller.owner, request.name))) {
        throw taken(request.name);
      }
      const inspected = await options.audio.inspect(request.referenceAudio, "");
      if (inspected.durationMs > limits.maxReferenceSeconds * 1000) {
        throw new ConnectError(
          `reference_audio lasts ${Math.round(inspected.durationMs / 1000)} s; the limit is ` +
            `${limits.maxReferenceSeconds} s (max reference seconds: VOXGATE_MAX_REFERENCE_SECONDS)`,
          Code.InvalidArgument,
        );
      }
      const made = await createClonePrompt(
        options.registry,
        {
          referenceAudio: request.referenceAudio,
          contentType: inspected.contentType,
          referenceText: request.referenceText,
          language: request.language,
          engine: request.engine,
          model: { family: request.model?.family ?? "", size: request.model?.size ?? "" },
        },
        {
          signal: context.signal,
          timeoutMs: context.timeoutMs() ?? options.defaultTimeoutMs,
          requestId: caller.requestId,
          maxPromptBytes: limits.maxPromptBytes,
        },
      );
      const model = { family: made.model?.family ?? "", size: made.model?.size ?? "" };
      const stored = await prompts.put(
        made.bytes,
        {
          name: request.name,
          engine: made.engine,
          model,
          referenceText: request.referenceText,
          contentType: made.contentType,
        },
        context.signal,
      );
      const prompt = await give(
        {
          owner: caller.owner,
          name: request.name,
          digest: stored.digest,
          tags,
          labels: { ...request.labels },
          modelFamily: model.family,
          modelSize: model.size,
          engine: made.engine,
          referenceText: request.referenceText,
          sizeBytes: stored.sizeBytes,
          referenceDurationMs: Math.round(inspected.durationMs),
          createdAt: new Date(),
        },
        request.replace,
        context,
      );
      return { prompt };
    },

    async namePrompt(request, context) {
      checkPromptName(request.name);
      const tags = checkTagsAndLabels(request.tags, request.labels);
      if (!isDigest(request.digest)) {
        throw new ConnectError(
          "digest must be 64 lowercase hex characters (sha256)",
          Code.InvalidArgument,
        );
      }
      if (request.referenceDurationMs < 0n) {
        throw new ConnectError("reference_duration_ms must not be negative", Code.InvalidArgument);
      }
      const stored = await options.describePrompt(request.digest, callerOf(context).principal);
      if (!stored) throw new ConnectError(`prompt ${request.digest} is not stored`, Code.NotFound);
      const prompt = await give(
        {
          owner: callerOf(context).owner,
          name: request.name,
          digest: stored.digest,
          tags,
          labels: { ...request.labels },
          modelFamily: stored.model.family,
          modelSize: stored.model.size,
          engine: stored.engine,
          referenceText: stored.referenceText,
          sizeBytes: stored.sizeBytes,
          referenceDurationMs: Number(request.referenceDurationMs),
          createdAt: new Date(),
        },
        request.replace,
        context,
      );
      return { prompt };
    },

    async getNamedPrompt(request, context) {
      checkPromptName(request.name);
      const record = await names.get(callerOf(context).owner, request.name);
      if (!record) throw notFound(request.name);
      return { prompt: toNamedPromptMessage(record) };
    },

    async listNamedPrompts(request, context) {
      const size = pageSizeOf(request.pageSize);
      const tags = checkTagsAndLabels(request.tags, request.labels);
      if (request.query.length > 200) {
        throw new ConnectError(
          `query is ${request.query.length} characters; the limit is 200`,
          Code.InvalidArgument,
        );
      }
      const rows = await names.list(
        callerOf(context).owner,
        { tags, labels: request.labels, query: request.query, modelFamily: request.modelFamily },
        decodeNameToken(request.pageToken),
        size + 1,
      );
      const page = rows.slice(0, size);
      const last = rows.length > size ? page.at(-1) : undefined;
      return {
        prompts: page.map(toNamedPromptMessage),
        nextPageToken: last ? encodeNameToken(last.name) : "",
      };
    },

    async deleteNamedPrompt(request, context) {
      checkPromptName(request.name);
      const caller = callerOf(context);
      const removed = await names.delete(caller.owner, request.name);
      if (!removed) throw notFound(request.name);
      await collect(removed.digest, caller.owner);
      caller.log?.info({ prompt: request.name, digest: removed.digest }, "prompt name deleted");
      return {};
    },
  };
}

/** Maps a name row to the wire message. */
export function toNamedPromptMessage(r: PromptNameRecord): NamedPrompt {
  return create(NamedPromptSchema, {
    name: r.name,
    digest: r.digest,
    tags: r.tags,
    labels: r.labels,
    referenceText: r.referenceText,
    model: { family: r.modelFamily, size: r.modelSize },
    engine: r.engine,
    sizeBytes: BigInt(r.sizeBytes),
    storeKey: promptBlobKey(r.digest),
    referenceDurationMs: BigInt(r.referenceDurationMs),
    createTime: timestampFromDate(r.createdAt),
  });
}

function encodeNameToken(lastName: string): string {
  return Buffer.from(JSON.stringify({ n: lastName })).toString("base64url");
}

function decodeNameToken(token: string): string {
  if (!token) return "";
  try {
    const value = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { n?: unknown };
    if (typeof value.n === "string" && value.n.length <= 128) return value.n;
  } catch {
    // fall through to the error below
  }
  throw new ConnectError("page_token is not one this server issued", Code.InvalidArgument);
}
