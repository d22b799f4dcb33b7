/**
 * Fixing up streamed WAV files once their length is known.
 *
 * A streamed WAV starts with the "unknown length" header (RIFF and data sizes 0xFFFFFFFF) because
 * its first bytes leave before synthesis ends. Players cope, but many editors and libraries read
 * the sizes, so after the last byte is written to a file we put the real ones in.
 */
import { open } from "node:fs/promises";
import {
  parseWav,
  WAV_HEADER_BYTES,
  WAV_UNKNOWN_SIZE,
  type WavInfo,
} from "../../services/audio/index.js";

/** Outcome of {@link patchWavFileSizes}. */
export type WavPatchResult =
  | {
      /** The sizes now match the file. */
      patched: true;
      /** Format read from the header; `dataBytes` is the patched data size. */
      info: WavInfo;
      /** RIFF size written at byte 4: file size - 8. */
      riffSize: number;
    }
  | {
      /** The file was left as it was. */
      patched: false;
      /** Why, for people, e.g. "not a canonical 44-byte WAV header". */
      reason: string;
    };

/**
 * Writes the real sizes into the header of the WAV file at `path`: RIFF size (byte 4) = file
 * size - 8 and data size (byte 40) = file size - 44. Only a canonical 44-byte PCM header (`RIFF`,
 * `WAVE`, a 16-byte `fmt ` chunk, `data` at byte 36) is touched, since the offsets are only right
 * for it; any other file, or one too large for 32-bit sizes, is left as is and the reason returned.
 * Sizes that are already right are rewritten unchanged.
 *
 * @throws the `fs` error when the file cannot be opened, read or written.
 */
export async function patchWavFileSizes(path: string): Promise<WavPatchResult> {
  const file = await open(path, "r+");
  try {
    const { size } = await file.stat();
    const header = new Uint8Array(WAV_HEADER_BYTES);
    const { bytesRead } = await file.read(header, 0, WAV_HEADER_BYTES, 0);
    if (bytesRead < WAV_HEADER_BYTES) {
      return { patched: false, reason: `file is ${size} bytes, shorter than a WAV header` };
    }
    const info = parseCanonicalHeader(header);
    if (info === undefined) {
      return { patched: false, reason: "not a canonical 44-byte PCM WAV header" };
    }
    const riffSize = size - 8;
    if (riffSize >= WAV_UNKNOWN_SIZE) {
      return { patched: false, reason: "file too large for 32-bit RIFF sizes" };
    }
    const dataBytes = size - WAV_HEADER_BYTES;
    await file.write(uint32le(riffSize), 0, 4, 4);
    await file.write(uint32le(dataBytes), 0, 4, 40);
    return { patched: true, info: { ...info, dataBytes }, riffSize };
  } finally {
    await file.close();
  }
}

/** Returns the format of a canonical 44-byte header, or undefined for anything else. */
function parseCanonicalHeader(header: Uint8Array): WavInfo | undefined {
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  if (tag(header, 12) !== "fmt " || view.getUint32(16, true) !== 16 || tag(header, 36) !== "data") {
    return undefined;
  }
  try {
    const info = parseWav(header);
    return info.dataOffset === WAV_HEADER_BYTES ? info : undefined;
  } catch {
    // Not RIFF/WAVE or not integer PCM: not ours to patch.
    return undefined;
  }
}

function tag(bytes: Uint8Array, offset: number): string {
  return String.fromCharCode(...bytes.subarray(offset, offset + 4));
}

function uint32le(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value, true);
  return bytes;
}
