/**
 * Helpers the model-server engine tests share: closing what a test opened, a synthesis request
 * with defaults, reading a whole synthesis, and catching an expected failure.
 */
import { afterEach } from "vitest";
import type { EngineSynthesisRequest, TtsEngine } from "../../services/engines/tts-engine.js";

/** Something a test opens and must close. */
export interface Closable {
  /** Releases it. */
  close(): Promise<void>;
}

/**
 * Returns a list to push what a test opens onto; after each test of the calling file everything
 * on it is closed, newest first, and the list emptied. Call it once at the file's top level.
 */
export function closeAfterEach(): Closable[] {
  const opened: Closable[] = [];
  afterEach(async () => {
    for (const thing of opened.splice(0).reverse()) await thing.close();
  });
  return opened;
}

/** A synthesis request of `text` with the default voice, speed 1 and no instructions. */
export function speechRequest(
  text: string,
  extra: Partial<EngineSynthesisRequest> = {},
): EngineSynthesisRequest {
  return { text, voiceId: "", speed: 1, instructions: "", ...extra };
}

/** Runs `engine.synthesize` to its end and returns all PCM in one buffer. */
export async function collectPcm(
  engine: TtsEngine,
  request: EngineSynthesisRequest,
  signal: AbortSignal = new AbortController().signal,
): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of engine.synthesize(request, signal)) {
    chunks.push(chunk.pcm);
  }
  return Buffer.concat(chunks);
}

/** Returns the error `promise` rejects with; throws when it fulfils. */
export async function failureOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a failure");
}
