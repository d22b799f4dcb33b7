import { Readable } from "node:stream";
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  S3Client,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import {
  assertBlobKey,
  assertBlobPrefix,
  type BlobInfo,
  BlobNotFoundError,
  type BlobStore,
  checkSignedUrlTtl,
} from "./blob-store.js";
import { decodeListToken, encodeListToken } from "./list-token.js";
import { copyAndReadBack, readBack } from "./read-back.js";

/** Options of {@link createS3BlobStore}. */
export interface S3BlobStoreOptions {
  /** Bucket name. */
  bucket: string;
  /** Prefix put before every key, e.g. `voxgate/`. @default "" */
  prefix?: string;
  /** Endpoint of an S3-compatible service (MinIO, R2, Spaces); empty for AWS. @default "" */
  endpoint?: string;
  /** Region; S3-compatible services often ignore it. @default "us-east-1" */
  region?: string;
  /** Path-style URLs (`host/bucket/key`), which MinIO and s3rver need. @default false */
  forcePathStyle?: boolean;
  /** Static credentials; absent = the AWS default chain (env, profile, SSO, IMDS/ECS roles). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Part size of multipart uploads, in bytes (at least 5 MiB, S3's minimum). @default 8 MiB */
  partSizeBytes?: number;
  /** Parts uploaded at once per upload. @default 2 */
  uploadConcurrency?: number;
}

const MiB = 1024 * 1024;

/**
 * Creates the S3-compatible object store over `@aws-sdk/client-s3`. Large bodies stream through a
 * multipart upload (`@aws-sdk/lib-storage`) part by part, never whole in memory; a failed or
 * aborted upload is aborted on the server so no parts linger. Signed URLs are SigV4 presigned GETs.
 */
export function createS3BlobStore(options: S3BlobStoreOptions): BlobStore {
  const prefix = options.prefix ?? "";
  if (prefix) assertBlobPrefix(prefix);
  const config: S3ClientConfig = {
    region: options.region || "us-east-1",
    forcePathStyle: options.forcePathStyle ?? false,
    // Older S3-compatible services reject the SDK's default trailing CRC checksums; prompt bytes
    // carry their own sha256 anyway.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  };
  if (options.endpoint) config.endpoint = options.endpoint;
  if (options.credentials) config.credentials = options.credentials;
  const client = new S3Client(config);
  const bucket = options.bucket;
  const partSize = Math.max(5 * MiB, options.partSizeBytes ?? 8 * MiB);
  const fullKey = (key: string) => `${prefix}${key}`;

  async function head(key: string): Promise<BlobInfo | undefined> {
    try {
      const out = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: fullKey(key) }));
      return {
        key,
        sizeBytes: out.ContentLength ?? 0,
        contentType: out.ContentType ?? "application/octet-stream",
        metadata: { ...out.Metadata },
        createTime: out.LastModified ?? new Date(0),
      };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  return {
    kind: "s3",

    async put(key, body, putOptions) {
      assertBlobKey(key);
      const upload = new Upload({
        client,
        params: {
          Bucket: bucket,
          Key: fullKey(key),
          Body: body instanceof Uint8Array ? body : Readable.from(body),
          ContentType: putOptions.contentType,
          Metadata: { ...putOptions.metadata },
        },
        partSize,
        queueSize: options.uploadConcurrency ?? 2,
        leavePartsOnError: false,
      });
      const onAbort = () => void upload.abort().catch(() => {});
      putOptions.signal?.throwIfAborted();
      putOptions.signal?.addEventListener("abort", onAbort, { once: true });
      try {
        await upload.done();
      } finally {
        putOptions.signal?.removeEventListener("abort", onAbort);
      }
      return readBack(head, key);
    },

    async get(key, getOptions) {
      assertBlobKey(key);
      const range = getOptions?.range;
      if (range && range.end <= range.start) {
        if (!(await head(key))) throw new BlobNotFoundError(key);
        return Readable.from([]);
      }
      try {
        const out = await client.send(
          new GetObjectCommand({
            Bucket: bucket,
            Key: fullKey(key),
            ...(range ? { Range: `bytes=${range.start}-${range.end - 1}` } : {}),
          }),
          getOptions?.signal ? { abortSignal: getOptions.signal } : {},
        );
        return out.Body as Readable;
      } catch (err) {
        if (isNotFound(err)) throw new BlobNotFoundError(key, { cause: err });
        // A range starting past the end: an empty read, as on the other stores.
        if ((err as { name?: string }).name === "InvalidRange") return Readable.from([]);
        throw err;
      }
    },

    async stat(key) {
      assertBlobKey(key);
      return head(key);
    },

    async list(listPrefix, listOptions) {
      assertBlobPrefix(listPrefix);
      // ListObjects (v1) with Marker: every S3-compatible service has it, and the page token is
      // simply the last key (ListObjectsV2 continuation tokens crash s3rver on Node 20's OpenSSL).
      const after = listOptions?.pageToken
        ? decodeListToken(listOptions.pageToken)
        : (listOptions?.startAfter ?? "");
      const out = await client.send(
        new ListObjectsCommand({
          Bucket: bucket,
          Prefix: fullKey(listPrefix),
          MaxKeys: listOptions?.pageSize ?? 1000,
          ...(after ? { Marker: fullKey(after) } : {}),
        }),
      );
      const items: BlobInfo[] = (out.Contents ?? []).map((o) => ({
        key: (o.Key ?? "").slice(prefix.length),
        sizeBytes: o.Size ?? 0,
        contentType: "",
        metadata: {},
        createTime: o.LastModified ?? new Date(0),
      }));
      const last = items.at(-1);
      return { items, nextPageToken: out.IsTruncated && last ? encodeListToken(last.key) : "" };
    },

    async delete(key) {
      assertBlobKey(key);
      // S3 answers a delete of a missing key with success, so ask first.
      if (!(await head(key))) return false;
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: fullKey(key) }));
      return true;
    },

    async copy(sourceKey, destinationKey) {
      return copyAndReadBack({
        sourceKey,
        destinationKey,
        copy: () =>
          client.send(
            new CopyObjectCommand({
              Bucket: bucket,
              Key: fullKey(destinationKey),
              CopySource: `${bucket}/${fullKey(sourceKey)}`,
              MetadataDirective: "COPY",
            }),
          ),
        isNotFound,
        head,
      });
    },

    async signedReadUrl(key, ttlMs) {
      assertBlobKey(key);
      const seconds = Math.floor(checkSignedUrlTtl(ttlMs) / 1000);
      return getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: fullKey(key) }), {
        expiresIn: seconds,
      });
    },

    async close() {
      client.destroy();
    },
  };
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === "NoSuchKey" || e.name === "NotFound" || e.$metadata?.httpStatusCode === 404;
}
