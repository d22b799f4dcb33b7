import type { BlobStore } from "../../object-store/blob-store.js";

/** Layout of finished segment PCM: signed 16-bit little-endian, interleaved. */
export interface PcmLayout {
  /** Samples per second per channel. */
  sampleRateHz: number;
  /** Interleaved channels. */
  channels: number;
}

/** A segment whose PCM is stored: the render's checkpoint. */
export interface SegmentCheckpoint extends PcmLayout {
  /** Segment index. */
  index: number;
  /** Object key of the PCM. */
  key: string;
  /** PCM bytes. */
  sizeBytes: number;
}

const RATE_KEY = "sample-rate-hz";
const CHANNELS_KEY = "channels";

/**
 * Key of segment `index`'s PCM under the job's prefix. Zero-padded, so a listing returns segments
 * in script order.
 */
export function segmentKey(keyPrefix: string, index: number): string {
  return `${keyPrefix}segments/${String(index).padStart(6, "0")}.pcm`;
}

/** Prefix of every segment checkpoint of a job. */
export function segmentPrefix(keyPrefix: string): string {
  return `${keyPrefix}segments/`;
}

/**
 * Reads `rate` and `channels` from an `audio/L16; rate=22050; channels=1` content type (RFC 2586;
 * channels default to 1). Undefined for any other type.
 */
export function parseL16ContentType(contentType: string): PcmLayout | undefined {
  const [type = "", ...params] = contentType.split(";").map((part) => part.trim());
  if (type.toLowerCase() !== "audio/l16") return undefined;
  const param = (name: string): number | undefined => {
    const found = params.find((p) => p.toLowerCase().startsWith(`${name}=`));
    if (found === undefined) return undefined;
    const value = Number(found.slice(name.length + 1));
    return Number.isInteger(value) && value > 0 ? value : Number.NaN;
  };
  const sampleRateHz = param("rate");
  const channels = param("channels") ?? 1;
  if (sampleRateHz === undefined || Number.isNaN(sampleRateHz) || Number.isNaN(channels)) {
    return undefined;
  }
  return { sampleRateHz, channels };
}

/** Stores a finished segment's PCM with its layout; the put is all-or-nothing. */
export async function putSegment(
  blobs: BlobStore,
  keyPrefix: string,
  index: number,
  pcm: Uint8Array,
  layout: PcmLayout,
  signal: AbortSignal,
): Promise<SegmentCheckpoint> {
  const key = segmentKey(keyPrefix, index);
  await blobs.put(key, pcm, {
    contentType: `audio/L16; rate=${layout.sampleRateHz}; channels=${layout.channels}`,
    metadata: { [RATE_KEY]: String(layout.sampleRateHz), [CHANNELS_KEY]: String(layout.channels) },
    signal,
  });
  return { index, key, sizeBytes: pcm.byteLength, ...layout };
}

/**
 * Finds the segments an earlier attempt finished: lists the job's segment prefix, then reads each
 * object's layout (listings of some stores carry no metadata). Objects whose layout cannot be read
 * are ignored, so their segment is synthesized again.
 */
export async function findSegments(
  blobs: BlobStore,
  keyPrefix: string,
  segmentCount: number,
): Promise<Map<number, SegmentCheckpoint>> {
  const found = new Map<number, SegmentCheckpoint>();
  const prefix = segmentPrefix(keyPrefix);
  const pattern = /^(\d{6})\.pcm$/;
  let pageToken = "";
  do {
    const page = await blobs.list(prefix, pageToken ? { pageToken } : {});
    for (const item of page.items) {
      const match = pattern.exec(item.key.slice(prefix.length));
      const index = match ? Number(match[1]) : -1;
      if (index < 0 || index >= segmentCount) continue;
      const info = await blobs.stat(item.key);
      if (!info) continue;
      const sampleRateHz = Number(info.metadata[RATE_KEY]);
      const channels = Number(info.metadata[CHANNELS_KEY]);
      if (!(Number.isInteger(sampleRateHz) && sampleRateHz > 0 && Number.isInteger(channels))) {
        continue;
      }
      if (channels <= 0 || info.sizeBytes % (channels * 2) !== 0) continue;
      found.set(index, { index, key: item.key, sizeBytes: info.sizeBytes, sampleRateHz, channels });
    }
    pageToken = page.nextPageToken;
  } while (pageToken);
  return found;
}

/** Deletes every segment checkpoint of a job (after its output is stored); idempotent. */
export async function deleteSegments(blobs: BlobStore, keyPrefix: string): Promise<number> {
  const prefix = segmentPrefix(keyPrefix);
  let deleted = 0;
  // Deleting while paging would shift pages under some stores: list from the start each round.
  for (;;) {
    const page = await blobs.list(prefix, { pageSize: 1000 });
    let round = 0;
    for (const item of page.items) {
      if (await blobs.delete(item.key)) round++;
    }
    deleted += round;
    // An empty page, or one whose objects were all gone already (another runner deleted them).
    if (round === 0) return deleted;
  }
}
