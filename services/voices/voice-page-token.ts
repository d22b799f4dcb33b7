import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Where a ListVoices page ends: presets come first (stage `p`, keyed by engine and id), then
 * cloned voices (stage `c`, keyed by id). A key cursor, not an offset, so voices appearing or
 * going between pages neither repeat nor get skipped.
 */
export interface VoicePageCursor {
  /** Which part of the merged list the last voice belonged to. */
  stage: "p" | "c";
  /** Sort key of the last voice returned. */
  key: string;
}

/** Opaque token for the page after `cursor`. */
export function encodeVoicePageToken(cursor: VoicePageCursor): string {
  return Buffer.from(JSON.stringify({ s: cursor.stage, k: cursor.key })).toString("base64url");
}

/**
 * Cursor named by a page token; the start of the list for an empty token.
 * @throws ConnectError INVALID_ARGUMENT for a token this server did not make.
 */
export function decodeVoicePageToken(token: string): VoicePageCursor {
  if (!token) return { stage: "p", key: "" };
  if (token.length <= 1024) {
    try {
      const value = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as {
        s?: unknown;
        k?: unknown;
      };
      if ((value.s === "p" || value.s === "c") && typeof value.k === "string") {
        return { stage: value.s, key: value.k };
      }
    } catch {
      // fall through to the error below
    }
  }
  throw new ConnectError("page_token is not one this server issued", Code.InvalidArgument);
}
