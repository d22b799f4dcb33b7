/**
 * Deterministic test audio for the fake model servers: a sine tone whose pitch is derived from a
 * key (a voice id or a clone prompt's digest) and whose length follows the text, so a test can
 * tell from the PCM alone which voice or prompt was used and for which text.
 */
import { createHash } from "node:crypto";

/** Samples of audio per character of text (10 ms at 24 kHz). */
export const SAMPLES_PER_CHAR = 240;

/** The tone frequency for `key`, in Hz: one of 60 steps between 150 and 740 Hz. */
export function toneHzFor(key: string): number {
  const digest = createHash("sha256").update(key).digest();
  return 150 + (digest.readUInt16BE(0) % 60) * 10;
}

/** 16-bit little-endian mono PCM of a sine at `hz` lasting `samples`. */
export function renderTone(hz: number, samples: number, sampleRateHz: number): Uint8Array {
  const out = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) {
    out.writeInt16LE(Math.round(Math.sin((2 * Math.PI * hz * i) / sampleRateHz) * 9000), i * 2);
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** The PCM a fake server speaks for `text` with the voice or prompt `key`. */
export function speechPcm(text: string, key: string, sampleRateHz: number): Uint8Array {
  return renderTone(toneHzFor(key), Math.max(1, text.length) * SAMPLES_PER_CHAR, sampleRateHz);
}
