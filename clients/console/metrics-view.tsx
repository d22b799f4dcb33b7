/** The gateway's Prometheus metrics, fetched with the token (`metrics` scope). */
import { useEffect, useState } from "preact/hooks";

/** Shows `/metrics` as text. */
export function MetricsView(props: { token: string; onClose: () => void }) {
  const [text, setText] = useState("Loading…");
  useEffect(() => {
    const abort = new AbortController();
    fetch("/metrics", { headers: { authorization: `Bearer ${props.token}` }, signal: abort.signal })
      .then(async (res) =>
        setText(res.ok ? await res.text() : `HTTP ${res.status}: ${await res.text()}`),
      )
      .catch((err: unknown) => abort.signal.aborted || setText(String(err)));
    return () => abort.abort();
  }, [props.token]);
  return (
    <section data-testid="metrics">
      <h2>
        Metrics{" "}
        <button type="button" class="link" onClick={props.onClose}>
          close
        </button>
      </h2>
      <pre class="metrics">{text}</pre>
    </section>
  );
}
