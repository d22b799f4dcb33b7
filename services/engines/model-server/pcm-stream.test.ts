import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeWavHeader } from "../../audio/wav.js";
import { isSynthesisFailedError } from "../engine-errors.js";
import { readPcmStream } from "./pcm-stream.js";

const format = { sampleRateHz: 24_000, channels: 1 };
const pcm = Buffer.from(Array.from({ length: 600 }, (_, i) => (i * 7) % 256));

async function read(pieces: Uint8Array[]): Promise<Buffer> {
  const out: Uint8Array[] = [];
  for await (const chunk of readPcmStream(pieces, { engineId: "test", format })) {
    expect(chunk.byteLength % 2).toBe(0);
    out.push(chunk);
  }
  return Buffer.concat(out);
}

function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.byteLength + 1)))].sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let last = 0;
  for (const point of [...points, bytes.byteLength]) {
    pieces.push(bytes.subarray(last, point));
    last = point;
  }
  return pieces;
}

// A WAV with a LIST chunk before the data and one after it, as some encoders write.
const list = Buffer.concat([
  Buffer.from("LIST"),
  Buffer.from([5, 0, 0, 0]),
  Buffer.from("INFOx\0"),
]);
function wavWithChunks(): Buffer {
  const header = Buffer.from(encodeWavHeader({ ...format, dataBytes: pcm.byteLength }));
  return Buffer.concat([header.subarray(0, 36), list, header.subarray(36), pcm, list]);
}

describe("readPcmStream", () => {
  it("passes raw PCM and WAV data through unchanged however the body is cut", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(2000), { maxLength: 12 }), async (cuts) => {
        expect((await read(split(pcm, cuts))).equals(pcm)).toBe(true);
        expect((await read(split(wavWithChunks(), cuts))).equals(pcm)).toBe(true);
        const streaming = Buffer.concat([encodeWavHeader(format), pcm]);
        expect((await read(split(streaming, cuts))).equals(pcm)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it("drops a trailing partial frame", async () => {
    expect((await read([pcm.subarray(0, 101)])).byteLength).toBe(100);
  });

  it("refuses WAV that is not 16-bit PCM in the announced format", async () => {
    const eightBit = Buffer.from(encodeWavHeader(format));
    eightBit.writeUInt16LE(1, 32);
    eightBit.writeUInt16LE(8, 34);
    const stereo = Buffer.from(encodeWavHeader({ sampleRateHz: 24_000, channels: 2 }));
    const truncated = Buffer.from(encodeWavHeader(format)).subarray(0, 30);
    for (const bad of [eightBit, stereo, Buffer.from("RIFF\0\0\0\0AVI LIST")]) {
      const err = await read([bad, pcm]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isSynthesisFailedError(err)).toBe(true);
    }
    const endedInHeader = await read([truncated]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isSynthesisFailedError(endedInHeader)).toBe(true);
  });
});
