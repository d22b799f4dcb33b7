import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { encodeWavHeader, parseWav, WAV_UNKNOWN_SIZE } from "../../services/audio/index.js";
import { patchWavFileSizes } from "./wav-file.js";

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "voxgate-wav-"));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function pcm(bytes: number): Uint8Array {
  return Uint8Array.from({ length: bytes }, (_, i) => (i * 7) & 0xff);
}

function sizes(file: Uint8Array): { riff: number; data: number } {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  return { riff: view.getUint32(4, true), data: view.getUint32(40, true) };
}

describe("patchWavFileSizes", () => {
  it("replaces the unknown-length sizes of a streamed WAV with the real ones", async () => {
    const path = join(dir, "streamed.wav");
    const header = encodeWavHeader({ sampleRateHz: 22050, channels: 1 });
    const body = pcm(22050 * 2);
    await writeFile(path, Buffer.concat([header, body]));
    expect(sizes(await readFile(path))).toEqual({ riff: WAV_UNKNOWN_SIZE, data: WAV_UNKNOWN_SIZE });

    const result = await patchWavFileSizes(path);

    const file = await readFile(path);
    expect(file).toHaveLength(44 + body.length);
    expect(sizes(file)).toEqual({ riff: file.length - 8, data: file.length - 44 });
    expect(result).toEqual({
      patched: true,
      riffSize: file.length - 8,
      info: {
        sampleRateHz: 22050,
        channels: 1,
        bitsPerSample: 16,
        dataOffset: 44,
        dataBytes: body.length,
      },
    });
    // The audio is untouched and a strict reader now sees the exact size.
    expect(file.subarray(44)).toEqual(Buffer.from(body));
    expect(parseWav(file).dataBytes).toBe(body.length);
  });

  it("is harmless on a file whose sizes are already right, and on an empty body", async () => {
    const path = join(dir, "exact.wav");
    const exact = Buffer.concat([
      encodeWavHeader({ sampleRateHz: 8000, channels: 2, dataBytes: 8 }),
      pcm(8),
    ]);
    await writeFile(path, exact);
    expect((await patchWavFileSizes(path)).patched).toBe(true);
    expect(await readFile(path)).toEqual(exact);

    const empty = join(dir, "empty.wav");
    await writeFile(empty, encodeWavHeader({ sampleRateHz: 8000, channels: 1 }));
    await patchWavFileSizes(empty);
    expect(sizes(await readFile(empty))).toEqual({ riff: 36, data: 0 });
  });

  it("leaves files without a canonical 44-byte header untouched", async () => {
    // A LIST chunk before data moves "data" away from byte 36.
    const header = encodeWavHeader({ sampleRateHz: 16000, channels: 1 });
    const list = Buffer.from(
      [..."LIST"].map((c) => c.charCodeAt(0)).concat([4, 0, 0, 0, 1, 2, 3, 4]),
    );
    const moved = Buffer.concat([header.subarray(0, 36), list, header.subarray(36), pcm(4)]);
    const cases: [string, Uint8Array, RegExp][] = [
      ["moved.wav", moved, /canonical/],
      ["short.wav", header.subarray(0, 20), /shorter than a WAV header/],
      ["mp3.bin", Buffer.concat([Buffer.from("ID3"), pcm(100)]), /canonical/],
    ];
    for (const [name, bytes, reason] of cases) {
      const path = join(dir, name);
      await writeFile(path, bytes);
      const result = await patchWavFileSizes(path);
      expect(result.patched).toBe(false);
      expect(result.patched ? "" : result.reason).toMatch(reason);
      expect(await readFile(path)).toEqual(Buffer.from(bytes));
    }
  });

  it("fails with the fs error for a missing file", async () => {
    await expect(patchWavFileSizes(join(dir, "missing.wav"))).rejects.toMatchObject({
      code: "ENOENT",
    });
  });
});
