/**
 * The signed-in token. It lives in `sessionStorage` only: it is gone when the tab closes, other
 * tabs do not see it, and it never enters a URL (the page sends it as an `Authorization` header).
 */
const KEY = "voxgate.token";

/** The token of this tab's session, or undefined when signed out. */
export function loadToken(): string | undefined {
  try {
    return sessionStorage.getItem(KEY) ?? undefined;
  } catch {
    // Storage can be disabled (privacy settings): the session then lasts until a reload.
    return undefined;
  }
}

/** Keeps `token` for this tab's session. */
export function saveToken(token: string): void {
  try {
    sessionStorage.setItem(KEY, token);
  } catch {
    // See loadToken.
  }
}

/** Forgets the token. */
export function clearToken(): void {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // See loadToken.
  }
}
