/** Sign-in: paste a token; it is checked with one call before it is kept. */
import { Code, ConnectError } from "@connectrpc/connect";
import { useState } from "preact/hooks";
import { createVoxgateBrowserClient } from "../browser.js";
import { errorText } from "./format.js";
import { saveToken } from "./session.js";

/** The sign-in form; calls `onSignedIn` with a token the gateway accepted. */
export function SignIn(props: { onSignedIn: (token: string) => void }) {
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  async function submit(event: Event) {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const token = String(new FormData(form).get("token") ?? "").trim();
    setError("");
    setBusy(true);
    try {
      const client = createVoxgateBrowserClient({ baseUrl: location.origin, token });
      // Any scoped call proves the token; a token without the admin scope is still a valid one.
      await client.backends.listBackends({}).catch((err: unknown) => {
        if (ConnectError.from(err).code !== Code.PermissionDenied) throw err;
      });
      saveToken(token);
      props.onSignedIn(token);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="sign-in">
      <h1>voxgate</h1>
      <form onSubmit={submit} data-testid="sign-in">
        <label>
          Token
          <input
            name="token"
            type="password"
            autocomplete="off"
            required
            placeholder="paste a client token"
          />
        </label>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {error && <p class="error">{error}</p>}
        <p class="muted">
          The token stays in this tab (sessionStorage) and is sent only to this gateway, as an
          Authorization header. The API reference is at <a href="/docs">/docs</a>.
        </p>
      </form>
    </main>
  );
}
