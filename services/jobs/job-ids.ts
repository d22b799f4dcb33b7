import { randomBytes } from "node:crypto";

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/** Shape of every job id: `job_` and 26 lowercase base32 characters (128 random bits). */
export const JOB_ID_PATTERN = /^job_[a-z2-7]{26}$/;

/** Makes a new job id: `job_` and 128 random bits in lowercase base32 (never from a caller). */
export function newJobId(): string {
  const bytes = randomBytes(17);
  let out = "";
  // 26 characters × 5 bits = 130 bits; the top two come from the 17th byte and are discarded.
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < 26) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return `job_${out}`;
}

/** Returns whether `id` has the shape of a job id voxgate makes. */
export function isJobId(id: string): boolean {
  return JOB_ID_PATTERN.test(id);
}

/**
 * Object key prefix of a job's blobs, `jobs/<random part>/`. Blob keys allow no `_`, so the
 * `job_` prefix is left out; the random part alone is unique.
 */
export function jobKeyPrefix(jobId: string): string {
  return `jobs/${jobId.slice("job_".length)}/`;
}
