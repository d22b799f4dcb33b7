/**
 * The voxgate web console: a page for people at the gateway's `/`. It calls the gateway's own
 * public API over Connect with the browser client, exactly as any other browser app would, with
 * the token someone pasted (kept in sessionStorage, sent as a header, never put in a URL).
 */
import { render } from "preact";
import { useMemo, useState } from "preact/hooks";
import { createVoxgateBrowserClient, type VoxgateBrowserClient } from "../browser.js";
import { BackendsPanel, useBackends } from "./backends-panel.js";
import { JobsPanel } from "./jobs-panel.js";
import { MetricsView } from "./metrics-view.js";
import { PlaygroundPanel } from "./playground-panel.js";
import { clearToken, loadToken } from "./session.js";
import { SignIn } from "./sign-in.js";
import { useVoices, VoicesPanel } from "./voices-panel.js";

function App() {
  const [token, setToken] = useState(loadToken);
  if (token === undefined) return <SignIn onSignedIn={setToken} />;
  return (
    <Console
      token={token}
      onSignOut={() => {
        clearToken();
        setToken(undefined);
      }}
    />
  );
}

function Console(props: { token: string; onSignOut: () => void }) {
  const client: VoxgateBrowserClient = useMemo(
    () => createVoxgateBrowserClient({ baseUrl: location.origin, token: props.token }),
    [props.token],
  );
  const backends = useBackends(client);
  const voices = useVoices(client);
  const [showMetrics, setShowMetrics] = useState(false);
  const engines = [
    ...new Set(backends.list.flatMap((b) => b.capabilities?.engines.map((e) => e.id) ?? [])),
  ].sort();
  return (
    <>
      <header>
        <h1>voxgate</h1>
        <nav>
          <a href="/docs" target="_blank" rel="noreferrer">
            API docs
          </a>
          <a
            href="/metrics"
            onClick={(event) => {
              // /metrics needs the token, which a plain link cannot send.
              event.preventDefault();
              setShowMetrics(!showMetrics);
            }}
          >
            Metrics
          </a>
          <button type="button" class="link" onClick={props.onSignOut} data-testid="sign-out">
            Sign out
          </button>
        </nav>
      </header>
      <main>
        {showMetrics && <MetricsView token={props.token} onClose={() => setShowMetrics(false)} />}
        <BackendsPanel state={backends} />
        <PlaygroundPanel client={client} voices={voices.list} engines={engines} />
        <VoicesPanel client={client} voices={voices} engines={engines} />
        <JobsPanel client={client} voices={voices.list} />
      </main>
    </>
  );
}

const root = document.getElementById("app");
if (root) {
  root.textContent = "";
  render(<App />, root);
}
