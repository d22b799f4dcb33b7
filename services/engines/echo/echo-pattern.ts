/**
 * The byte pattern the echo engine streams. Byte `i` of an answer is a function of `i` alone, so a
 * client can check every byte it received (order, gaps, duplicates) without the engine's help.
 */

/** Length of the repeating pattern, in bytes: a prime, so it never lines up with chunk sizes. */
export const ECHO_PATTERN_BYTES = 251 * 4;

const pattern = new Uint8Array(ECHO_PATTERN_BYTES);
for (let i = 0; i < ECHO_PATTERN_BYTES; i++) pattern[i] = (i * 37 + (i >>> 8) * 11 + 5) & 0xff;

/** Returns byte `offset` of every echo answer. */
export function echoByteAt(offset: number): number {
  return pattern[offset % ECHO_PATTERN_BYTES] as number;
}

/**
 * Fills `target` with the pattern bytes that start at answer offset `offset`, and returns it.
 * Copies whole pattern runs, so filling megabytes costs microseconds, not a loop per byte.
 */
export function fillEchoBytes(target: Uint8Array, offset: number): Uint8Array {
  let written = 0;
  let at = offset % ECHO_PATTERN_BYTES;
  while (written < target.byteLength) {
    const run = Math.min(ECHO_PATTERN_BYTES - at, target.byteLength - written);
    target.set(pattern.subarray(at, at + run), written);
    written += run;
    at = 0;
  }
  return target;
}

/**
 * Counts the bytes of `chunk` (received at answer offset `offset`) that differ from the pattern;
 * 0 means the chunk is exactly what the echo engine sent.
 */
export function countEchoMismatches(chunk: Uint8Array, offset: number): number {
  let bad = 0;
  let at = offset % ECHO_PATTERN_BYTES;
  for (let i = 0; i < chunk.byteLength; i++) {
    if (chunk[i] !== pattern[at]) bad++;
    at = at + 1 === ECHO_PATTERN_BYTES ? 0 : at + 1;
  }
  return bad;
}
