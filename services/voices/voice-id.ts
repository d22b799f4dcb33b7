import { randomBytes } from "node:crypto";

/** Prefix of every cloned voice id. */
export const kClonedVoicePrefix = "vc_";

// RFC 4648 base32 alphabet, lowercase: ids stay readable and case-insensitive tools keep them whole.
const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";
const RANDOM_CHARS = 20;
const CLONED_ID = /^vc_[a-z2-7]{20}$/;
// Preset ids come from engines ("en-us", "gmw/en-US", "vivian"); anything else is not an id at all.
const ANY_ID = /^[A-Za-z0-9][A-Za-z0-9._:/+-]{0,127}$/;

/** Makes a new cloned voice id: `vc_` and 20 random base32 characters (100 bits). */
export function newVoiceId(): string {
  const bytes = randomBytes(RANDOM_CHARS);
  let id = kClonedVoicePrefix;
  for (const byte of bytes) id += ALPHABET[byte & 31];
  return id;
}

/** Whether `id` has the shape of a cloned voice id (it may still not exist). */
export function isClonedVoiceId(id: string): boolean {
  return CLONED_ID.test(id);
}

/**
 * Whether `id` could name any voice, preset or cloned: 1–128 characters of letters, digits and
 * `._:/+-`, starting with a letter or digit, and no `..` segment. Ids that fail this are refused
 * before any lookup.
 */
export function isPlausibleVoiceId(id: string): boolean {
  return ANY_ID.test(id) && !id.split("/").includes("..") && !id.includes("..");
}

/** Whether `digest` is a lowercase hex sha256, the only form a prompt id takes. */
export function isDigest(digest: string): boolean {
  return /^[0-9a-f]{64}$/.test(digest);
}
