/**
 * Plays audio while it streams in. MP3 goes through Media Source Extensions: each chunk is
 * appended as it arrives and playback starts after the first one. Other containers (WAV, Ogg
 * Opus, FLAC) cannot be fed to a media element piece by piece, so they play once complete.
 */

/** One piece of a streamed answer, as `google.api.HttpBody` carries it. */
export interface AudioChunk {
  contentType: string;
  data: Uint8Array;
}

/** What a finished playback setup measured. */
export interface StreamedAudio {
  /** Bytes received. */
  bytes: number;
  /** Content type of the audio. */
  contentType: string;
  /** Milliseconds from the call to its first audio byte. */
  firstChunkMs: number | undefined;
  /** Whether playback began before the stream ended. */
  streamed: boolean;
  /** The received bytes, e.g. for a download. */
  blob: Blob;
}

/**
 * Streams `chunks` into `audio` and starts playback as early as the format allows; resolves when
 * the whole answer has arrived (playback may still be running). Frees the previous object URL of
 * `audio`. `signal` stops reading.
 */
export async function playStreamedAudio(
  audio: HTMLAudioElement,
  chunks: AsyncIterable<AudioChunk>,
  signal?: AbortSignal,
): Promise<StreamedAudio> {
  const started = performance.now();
  const iterator = chunks[Symbol.asyncIterator]();
  const parts: Uint8Array[] = [];
  let first = await iterator.next();
  while (!first.done && first.value.data.length === 0) first = await iterator.next();
  if (first.done) throw new Error("the answer held no audio");
  const contentType = first.value.contentType || "application/octet-stream";
  const firstChunkMs = performance.now() - started;
  const mime = contentType.split(";")[0]?.trim() ?? "";
  replaceSource(audio);
  let streamed = false;
  if (
    mime === "audio/mpeg" &&
    typeof MediaSource !== "undefined" &&
    MediaSource.isTypeSupported(mime)
  ) {
    const source = new MediaSource();
    audio.src = URL.createObjectURL(source);
    await new Promise<void>((resolve) =>
      source.addEventListener("sourceopen", () => resolve(), { once: true }),
    );
    const buffer = source.addSourceBuffer(mime);
    const append = async (data: Uint8Array) => {
      parts.push(data);
      buffer.appendBuffer(data as Uint8Array<ArrayBuffer>);
      await new Promise<void>((resolve, reject) => {
        buffer.addEventListener("updateend", () => resolve(), { once: true });
        buffer.addEventListener(
          "error",
          () => reject(new Error("the browser could not decode the audio")),
          { once: true },
        );
      });
    };
    await append(first.value.data);
    // Playback starts now, while the rest is still on its way.
    audio.play().catch(() => {});
    streamed = true;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      signal?.throwIfAborted();
      if (next.value.data.length > 0) await append(next.value.data);
    }
    source.endOfStream();
  } else {
    parts.push(first.value.data);
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      signal?.throwIfAborted();
      parts.push(next.value.data);
    }
    audio.src = URL.createObjectURL(new Blob(parts as Uint8Array<ArrayBuffer>[], { type: mime }));
    audio.play().catch(() => {});
  }
  const blob = new Blob(parts as Uint8Array<ArrayBuffer>[], { type: mime });
  return { bytes: blob.size, contentType, firstChunkMs, streamed, blob };
}

/** Stops `audio` and frees the object URL it played. */
export function replaceSource(audio: HTMLAudioElement): void {
  audio.pause();
  if (audio.src.startsWith("blob:")) URL.revokeObjectURL(audio.src);
  audio.removeAttribute("src");
}

/** Offers `blob` as a file download named `name`. */
export function downloadBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  // The download has started by the next task; the URL is no longer needed.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** File name extension of an audio content type. */
export function extensionOf(contentType: string): string {
  const mime = contentType.split(";")[0]?.trim() ?? "";
  const known: Record<string, string> = {
    "audio/mpeg": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/ogg": "ogg",
    "audio/opus": "opus",
    "audio/flac": "flac",
    "audio/aac": "aac",
    "audio/l16": "pcm",
  };
  return known[mime.toLowerCase()] ?? "bin";
}
