import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { createAudioCoalescer } from "./audio-coalescer.js";
import { sendCoalesced } from "./coalescing-sender.js";

type Piece = { kind: { case: "format" | "audio"; value: unknown } };
const audio = (...bytes: number[]): Piece => ({
  kind: { case: "audio", value: new Uint8Array(bytes) },
});
const format: Piece = { kind: { case: "format", value: { sampleRateHz: 16000 } } };

/** A source yielding `pieces`, `gapMs` apart (0: as fast as it is pulled). */
async function* produce(pieces: readonly Piece[], gapMs = 0): AsyncGenerator<Piece> {
  for (const piece of pieces) {
    if (gapMs > 0) await sleep(gapMs);
    yield piece;
  }
}

/** What each send got, flattened to audio byte lists or "format". */
const shape = (sent: unknown[]) =>
  sent.map((m) => {
    const { kind } = m as Piece;
    return kind.case === "audio" ? [...(kind.value as Uint8Array)] : kind.case;
  });

describe("sendCoalesced with the audio coalescer", () => {
  it("sends every piece as is while the link keeps up", async () => {
    const sent: unknown[] = [];
    const pieces = [format, audio(1), audio(2), audio(3)];
    await sendCoalesced(produce(pieces), async (m) => void sent.push(m), createAudioCoalescer(64));
    expect(shape(sent)).toEqual(["format", [1], [2], [3]]);
  });

  it("merges audio that arrives while a send waits, in order, and never merges a format", async () => {
    const sent: unknown[] = [];
    const pieces = [audio(1), audio(2), audio(3), format, audio(4), audio(5), audio(6)];
    await sendCoalesced(
      produce(pieces),
      async (m) => {
        sent.push(m);
        await sleep(20); // a slow link: everything produced meanwhile waits
      },
      createAudioCoalescer(64),
    );
    expect(shape(sent)).toEqual([[1], [2, 3], "format", [4, 5, 6]]);
    expect(shape(sent).flat()).toEqual([1, 2, 3, "format", 4, 5, 6]);
  });

  it("sends the first audio alone, so the caller's first byte waits for nothing", async () => {
    const sent: unknown[] = [];
    await sendCoalesced(
      produce([format, audio(1), audio(2), audio(3)]),
      async (m) => {
        sent.push(m);
        await sleep(20);
      },
      createAudioCoalescer(64),
    );
    expect(shape(sent)).toEqual(["format", [1], [2, 3]]);
  });

  it("never merges past the size limit", async () => {
    const sent: unknown[] = [];
    const pieces = [audio(1, 1), audio(2, 2), audio(3, 3), audio(4, 4), audio(5, 5)];
    await sendCoalesced(
      produce(pieces),
      async (m) => {
        sent.push(m);
        await sleep(10);
      },
      createAudioCoalescer(4),
    );
    expect(shape(sent)).toEqual([
      [1, 1],
      [2, 2, 3, 3],
      [4, 4, 5, 5],
    ]);
  });

  it("sends a held piece as soon as the link frees, without waiting for the next piece", async () => {
    const sentAt: number[] = [];
    const began = performance.now();
    await sendCoalesced(
      produce([audio(1), audio(2), audio(3)], 5),
      async () => {
        sentAt.push(performance.now() - began);
        await sleep(30);
      },
      createAudioCoalescer(64),
    );
    // The second send starts when the first ends (~35 ms), not when a later piece arrives.
    expect(sentAt).toHaveLength(2);
    expect(sentAt[1] as number).toBeLessThan(60);
  });

  it("keeps every byte in order when sends alternate between instant and blocked", async () => {
    // Sends that do not block finish in microtasks, between the loop's own steps: the sender must
    // not hold a piece with nothing in flight to send it (that once spun forever).
    const pieces = Array.from({ length: 300 }, (_, i) => audio(i % 256));
    const sent: unknown[] = [];
    let calls = 0;
    await sendCoalesced(
      produce(pieces),
      async (m) => {
        sent.push(m);
        if (++calls % 3 === 0) await sleep(1);
      },
      createAudioCoalescer(16),
    );
    expect(shape(sent).flat()).toEqual(pieces.map((_, i) => i % 256));
    expect(sent.length).toBeLessThan(pieces.length);
  });

  it("rejects with the first failed send", async () => {
    let calls = 0;
    const failing = sendCoalesced(
      produce([audio(1), audio(2), audio(3), audio(4)]),
      async () => {
        calls++;
        await sleep(5);
        if (calls === 2) throw new Error("link closed");
      },
      createAudioCoalescer(64),
    );
    await expect(failing).rejects.toThrow("link closed");
  });
});
