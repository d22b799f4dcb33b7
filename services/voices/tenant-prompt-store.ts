import { PromptStoreError } from "../prompt-store/prompt-errors.js";
import { assertDigest } from "../prompt-store/prompt-keys.js";
import {
  decodePromptPageToken,
  encodePromptPageToken,
  type PromptRecord,
  type PromptStore,
} from "../prompt-store/prompt-store.js";
import type { PromptOwnerMetadata, VoiceRepository, VoiceViewer } from "./voice-repository.js";

/** Options of {@link createTenantPromptStore}. */
export interface TenantPromptStoreOptions {
  /** The whole prompt store. */
  store: PromptStore;
  /** Voice rows and prompt owners. */
  repository: Pick<
    VoiceRepository,
    | "addPromptOwner"
    | "promptOwnerMetadata"
    | "removePromptOwner"
    | "promptAccess"
    | "ownedPrompts"
    | "voicesUsingPrompt"
  >;
  /** The caller's tenant view. */
  viewer: VoiceViewer;
}

/**
 * The prompt store as one caller sees it. Prompts are content-addressed, so a prompt belongs to
 * every tenant that uploaded its bytes or owns a voice made with them. A tenant reads, lists and
 * deletes only its own prompts; another tenant's is NOT_FOUND, like a missing one. Deleting drops
 * the caller's ownership and removes the bytes only when no tenant and no voice still holds them.
 * Admin views (`viewer.all`) see every prompt, including ones stored before tenants (which have no
 * owner). Malformed digests are refused before any ownership lookup, as by the store itself.
 *
 * What an owner called the bytes (name, transcript, tags) is its own: a tenant that uploads bytes
 * another tenant stored first reads back its own metadata, never the first uploader's, and
 * `created` says whether it is new to this tenant, so an upload reveals nothing of other tenants.
 */
export function createTenantPromptStore(options: TenantPromptStoreOptions): PromptStore {
  const { store, repository, viewer } = options;
  const owns = async (digest: string): Promise<boolean> => {
    assertDigest(digest);
    return viewer.all || (await repository.promptAccess(digest, viewer.tenant)).owned;
  };
  const missing = (digest: string) =>
    new PromptStoreError("not-found", `prompt ${digest} does not exist`);
  /** `record` with this tenant's own name, transcript and tags when it recorded them. */
  const asSeen = async (record: PromptRecord): Promise<PromptRecord> => {
    if (viewer.all) return record;
    const own = await repository.promptOwnerMetadata(record.digest, viewer.tenant);
    return own ? { ...record, metadata: { ...record.metadata, ...own } } : record;
  };

  return {
    async put(body, metadata, putOptions) {
      const result = await store.put(body, metadata, putOptions);
      const own: PromptOwnerMetadata = {
        name: metadata.name,
        referenceText: metadata.referenceText,
        tags: { ...metadata.tags },
      };
      const added = await repository.addPromptOwner(result.prompt.digest, viewer.tenant, own);
      if (viewer.all) return result;
      return { prompt: await asSeen(result.prompt), created: added };
    },
    async get(digest, getOptions) {
      if (!(await owns(digest))) throw missing(digest);
      const found = await store.get(digest, getOptions);
      return { ...found, prompt: await asSeen(found.prompt) };
    },
    async stat(digest) {
      if (!(await owns(digest))) return undefined;
      const record = await store.stat(digest);
      return record && asSeen(record);
    },
    async list(listOptions) {
      if (viewer.all) return store.list(listOptions);
      const after = listOptions.pageToken ? decodePromptPageToken(listOptions.pageToken) : "";
      const family = listOptions.modelFamily ?? "";
      const prompts: PromptRecord[] = [];
      let cursor = after;
      let more = true;
      // Owned digests come from SQL in order; a page may pass over a few whose family differs.
      while (prompts.length < listOptions.pageSize && more) {
        const want = listOptions.pageSize - prompts.length;
        const digests = await repository.ownedPrompts(viewer.tenant, cursor, want + 1);
        more = digests.length > want;
        for (const digest of digests.slice(0, want)) {
          cursor = digest;
          const record = await store.stat(digest);
          if (record && (!family || record.metadata.modelFamily === family)) {
            prompts.push(await asSeen(record));
          }
        }
      }
      return { prompts, nextPageToken: more ? encodePromptPageToken(cursor) : "" };
    },
    async delete(digest) {
      if (viewer.all) return store.delete(digest);
      if (!(await owns(digest))) return false;
      const mine = await repository.voicesUsingPrompt(digest, 3, viewer.tenant);
      if (mine.length > 0) {
        throw new PromptStoreError(
          "failed-precondition",
          `prompt ${digest} is used by voice ${mine.join(", ")}; delete the voice instead`,
        );
      }
      const others = await repository.removePromptOwner(digest, viewer.tenant);
      // Still held by another tenant or another tenant's voice: only this tenant lets go.
      if (others > 0 || (await repository.voicesUsingPrompt(digest, 1)).length > 0) return true;
      return store.delete(digest);
    },
    signedReadUrl(digest, ttlMs) {
      return store.signedReadUrl(digest, ttlMs);
    },
  };
}
