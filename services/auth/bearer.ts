/**
 * Extracts the token from an `Authorization: Bearer <token>` header value. Returns undefined for a
 * missing header, another scheme, or an empty token. The scheme is case-insensitive (RFC 7235).
 */
export function parseBearer(
  header: string | readonly string[] | undefined | null,
): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (typeof value !== "string") return undefined;
  const match = /^\s*bearer\s+(\S+)\s*$/i.exec(value);
  return match?.[1];
}
