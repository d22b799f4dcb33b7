import { Code, ConnectError } from "@connectrpc/connect";

/** Default page size of list RPCs. */
export const DEFAULT_PAGE_SIZE = 50;
/** Largest page size of list RPCs. */
export const MAX_PAGE_SIZE = 500;

/** Page size to use for a requested `pageSize` (0 = default, capped at the maximum). */
export function pageSizeOf(pageSize: number): number {
  if (pageSize < 0) throw new ConnectError("page_size must not be negative", Code.InvalidArgument);
  return pageSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(pageSize, MAX_PAGE_SIZE);
}

/** Opaque token for the page starting at `offset`. */
export function encodePageToken(offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset })).toString("base64url");
}

/**
 * Offset named by a page token; 0 for an empty token.
 * @throws ConnectError INVALID_ARGUMENT for a token this server did not make.
 */
export function decodePageToken(token: string): number {
  if (!token) return 0;
  try {
    const value = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { o?: unknown };
    if (typeof value.o === "number" && Number.isInteger(value.o) && value.o >= 0) return value.o;
  } catch {
    // fall through to the error below
  }
  throw new ConnectError("page_token is not one this server issued", Code.InvalidArgument);
}
