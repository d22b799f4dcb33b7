import { mkdtempSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { PromptSource } from "../agent-link/prompt-source.js";
import { type DataDirLock, lockDataDir } from "../database/data-dir-lock.js";
import { createDatabaseProvider, type DatabaseProvider } from "../database/database-provider.js";
import type { BlobStore } from "../object-store/blob-store.js";
import {
  type BlobStoreConfig,
  type BlobStoreRuntime,
  createBlobStore,
} from "../object-store/blob-store-config.js";
import { isPromptStoreError } from "../prompt-store/prompt-errors.js";
import {
  createPromptNameRepository,
  type PromptNameRepository,
} from "../prompt-store/prompt-name-repository.js";
import { toPromptRpcError } from "../prompt-store/prompt-rpc-error.js";
import { createPromptStore, type PromptStore } from "../prompt-store/prompt-store.js";
import {
  createReferenceAudioStore,
  type ReferenceAudioStore,
} from "../voices/reference-audio-store.js";
import { createVoiceRepository, type VoiceRepository } from "../voices/voice-repository.js";
import type { VoicePromptStore } from "../voices/voice-storage.js";
import { gatewayMigrations } from "./gateway-migrations.js";
import { gatewaySettings } from "./gateway-settings.js";
import type { HttpFrontend } from "./http-frontend.js";

/** The `storage` block of the gateway options. Every key has a default. */
export interface GatewayStorageOptions {
  /**
   * Data directory: embedded database (`db/`), filesystem store (`blobs/`), URL signing secret.
   * @default a new temporary directory, deleted at close (in-process tests)
   */
  dataDir?: string;
  /**
   * `postgres://…` for a shared server, empty for embedded PGlite under the data dir, `memory:`
   * for PGlite in memory. @default "" with a data dir given, else "memory:"
   */
  databaseUrl?: string;
  /** Longest PostgreSQL statement, in ms (then UNAVAILABLE). @default setting databaseStatementTimeoutMs */
  databaseStatementTimeoutMs?: number;
  /**
   * Longest wait for a PostgreSQL connection, in ms (then UNAVAILABLE).
   * @default setting databaseConnectTimeoutMs
   */
  databaseConnectTimeoutMs?: number;
  /** Most pooled connections to a PostgreSQL server. @default setting databaseMaxConnections */
  databaseMaxConnections?: number;
  /**
   * Object store: a configuration, or a store already made (tests; closed with the gateway).
   * @default the filesystem store under `<dataDir>/blobs`, URL secret in `<dataDir>`
   */
  blobStore?: BlobStoreConfig | BlobStoreRuntime;
  /**
   * Base URL serverless workers reach the gateway at, for filesystem signed URLs.
   * @default the public port's own address
   */
  publicUrl?: string;
  /** Largest clone prompt, in bytes. @default setting maxPromptBytes */
  maxPromptBytes?: number;
  /** Largest prompt metadata JSON, in bytes. @default setting maxPromptMetadataBytes */
  maxPromptMetadataBytes?: number;
  /** Lifetime of signed prompt URLs for serverless backends, in ms (one hour at most). @default setting signedUrlTtlMs */
  signedUrlTtlMs?: number;
}

/** What the gateway stores, opened lazily: nothing here costs time until it is used. */
export interface GatewayStorage {
  /** The data directory in use. */
  readonly dataDir: string;
  /** SQL (voices, jobs); opened on first use, or at `start` when it already holds state. */
  readonly database: DatabaseProvider;
  /** The object store. */
  readonly blobs: BlobStore;
  /** Serves signed URLs of the filesystem store (`GET /v1/blobs/…`); undefined for S3 and GCS. */
  readonly frontend: HttpFrontend | undefined;
  /** Clone prompts. */
  readonly prompts: PromptStore;
  /** Largest clone prompt, in bytes (`VOXGATE_MAX_PROMPT_BYTES`). */
  readonly maxPromptBytes: number;
  /** Clone prompts as the voice catalog uses them. */
  readonly voicePrompts: VoicePromptStore;
  /** Reference recordings of cloned voices. */
  readonly references: ReferenceAudioStore;
  /** Voice rows. */
  readonly voices: VoiceRepository;
  /** Prompt names (per owner) with tags and labels. */
  readonly promptNames: PromptNameRepository;
  /** Prompt bytes for the agent link (agents get bytes, never URLs). */
  readonly promptSource: PromptSource;
  /** A short-lived URL of a prompt, for serverless backends only. */
  signPromptUrl(digest: string): Promise<string>;
  /**
   * Takes the data directory's lock (embedded database only): a second process on the same
   * directory fails here with `DataDirLockedError`. Idempotent; {@link start} takes it too.
   */
  lock(): Promise<void>;
  /**
   * Takes the lock, then opens the database: awaited when it already holds state (a restart
   * resumes its jobs), in the background when it is new, once `openNewAfter` settled (a call
   * that needs it before opens it at once).
   */
  start(options?: { openNewAfter?: Promise<unknown> }): Promise<void>;
  /** Closes the database and the object store, then deletes a temporary data dir. Idempotent. */
  close(): Promise<void>;
}

/** Creates the gateway's storage from its options; `publicUrl` is read when a URL is signed. */
export function createGatewayStorage(
  options: GatewayStorageOptions,
  publicUrl: () => string,
  log: Logger,
): GatewayStorage {
  const temporary = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "voxgate-gateway-"));
  const database = createDatabaseProvider({
    url: options.databaseUrl ?? (temporary ? "memory:" : ""),
    dataDir,
    migrations: gatewayMigrations,
    pool: {
      databaseMaxConnections:
        options.databaseMaxConnections ?? gatewaySettings.databaseMaxConnections.defaultValue,
      databaseConnectTimeoutMs:
        options.databaseConnectTimeoutMs ?? gatewaySettings.databaseConnectTimeoutMs.defaultValue,
      databaseStatementTimeoutMs:
        options.databaseStatementTimeoutMs ??
        gatewaySettings.databaseStatementTimeoutMs.defaultValue,
    },
    log,
  });
  const runtime =
    options.blobStore && "store" in options.blobStore
      ? options.blobStore
      : createBlobStore(
          options.blobStore ?? {
            kind: "filesystem",
            rootDir: join(dataDir, "blobs"),
            urlSecret: "",
            secretDir: dataDir,
          },
          { publicBaseUrl: () => options.publicUrl || publicUrl(), log },
        );
  const blobs = runtime.store;
  const maxPromptBytes = options.maxPromptBytes ?? gatewaySettings.maxPromptBytes.defaultValue;
  const prompts = createPromptStore({
    blobs,
    maxPromptBytes,
    maxMetadataBytes:
      options.maxPromptMetadataBytes ?? gatewaySettings.maxPromptMetadataBytes.defaultValue,
  });
  // Never longer than an hour, whatever the options say.
  const ttlMs = Math.min(
    3_600_000,
    Math.max(1000, options.signedUrlTtlMs ?? gatewaySettings.signedUrlTtlMs.defaultValue),
  );

  const voicePrompts: VoicePromptStore = {
    async put(bytes, metadata, signal) {
      const { prompt } = await prompts
        .put(
          (async function* () {
            yield bytes;
          })(),
          {
            name: metadata.name,
            referenceText: metadata.referenceText,
            modelFamily: metadata.model.family,
            modelSize: metadata.model.size,
            engine: metadata.engine,
            contentType: metadata.contentType,
            tags: {},
          },
          signal ? { signal } : {},
        )
        .catch((err: unknown) => {
          throw toPromptRpcError(err);
        });
      return {
        digest: prompt.digest,
        sizeBytes: prompt.sizeBytes,
        model: { family: prompt.metadata.modelFamily, size: prompt.metadata.modelSize },
      };
    },
    async stat(digest) {
      const prompt = await prompts.stat(digest);
      return prompt
        ? {
            digest: prompt.digest,
            sizeBytes: prompt.sizeBytes,
            model: { family: prompt.metadata.modelFamily, size: prompt.metadata.modelSize },
          }
        : undefined;
    },
    async delete(digest) {
      await prompts.delete(digest);
    },
  };

  const promptSource: PromptSource = {
    async open(digest, signal) {
      try {
        const { prompt, chunks } = await prompts.get(digest, { signal });
        return { sizeBytes: prompt.sizeBytes, chunks };
      } catch (err) {
        if (isPromptStoreError(err, "not-found")) {
          throw new ConnectError(`prompt ${digest} is not stored`, Code.NotFound);
        }
        throw toPromptRpcError(err);
      }
    },
  };

  const embedded = !temporary && !options.databaseUrl;
  let locking: Promise<DataDirLock | undefined> | undefined;
  let closing: Promise<void> | undefined;
  // One process per embedded database: a second gateway on the same data directory would
  // open it too and each would see different jobs. PostgreSQL is how gateways share.
  const lock = async () => {
    locking ??= embedded ? lockDataDir(dataDir) : Promise.resolve(undefined);
    await locking;
  };
  return {
    dataDir,
    database,
    blobs,
    frontend: runtime.frontend,
    prompts,
    maxPromptBytes,
    voicePrompts,
    references: createReferenceAudioStore(blobs),
    voices: createVoiceRepository(database),
    promptNames: createPromptNameRepository(database),
    promptSource,
    signPromptUrl: (digest) => prompts.signedReadUrl(digest, ttlMs),
    lock,
    async start(startOptions = {}) {
      await lock();
      // A database that holds state is open before jobs start, so a restart resumes at once.
      if (database.existing) {
        await database.get();
        return;
      }
      // A new embedded database opens now too, in the background (a few seconds the first time,
      // longer on a loaded machine): the first call that stores something would otherwise wait
      // for it with nothing on screen. /readyz says "opening" until it is done. A temporary
      // in-memory one (in-process tests) opens on first use.
      if (!temporary) {
        void (startOptions.openNewAfter ?? Promise.resolve()).finally(() => {
          if (closing || database.state !== "closed") return;
          log.info("opening the new embedded database in the background");
          database.get().catch((err: unknown) => {
            // Stopped while opening: the close says so.
            if (!closing) log.error({ err }, "database failed to open");
          });
        });
      }
    },
    close() {
      closing ??= (async () => {
        await Promise.allSettled([database.close(), blobs.close()]);
        await (await locking?.catch(() => undefined))?.release();
        if (temporary) await rm(dataDir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}
