/** Backends, live: WatchBackends over Connect (a server stream), resumed after a break. */
import { Code, ConnectError } from "@connectrpc/connect";
import { useEffect, useState } from "preact/hooks";
import {
  type Backend,
  BackendKind,
  BackendState,
  BreakerState,
} from "../../gen/voxgate/v1/backend_admin_pb.js";
import type { VoxgateBrowserClient } from "../browser.js";
import { enumName, errorText, formatBytes } from "./format.js";

/** What the backends panel shows. */
export interface BackendsState {
  /** Backends by id order; removed ones are dropped. */
  list: Backend[];
  /** Why the watch is not running, if it is not. */
  error: string;
  /** Whether the watch stream is open. */
  live: boolean;
}

/** Pause before re-opening a broken watch, in ms. */
const RETRY_MS = 2000;
/** How often load and GPU figures are refreshed, in ms. */
const LOAD_REFRESH_MS = 2000;

/**
 * Keeps a live list of backends. WatchBackends sends every backend's current state, then each
 * state or breaker change as it happens; a broken stream is re-opened (and so resynchronised)
 * after {@link RETRY_MS}, and a token without the `admin` scope stops it for good. Heartbeats are
 * not watch events, so while the watch runs, ListBackends refreshes load and GPU figures every
 * {@link LOAD_REFRESH_MS}.
 */
export function useBackends(client: VoxgateBrowserClient): BackendsState {
  const [state, setState] = useState<BackendsState>({ list: [], error: "", live: false });
  useEffect(() => {
    const abort = new AbortController();
    const byId = new Map<string, Backend>();
    let live = false;
    const publish = () => {
      const list = [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
      setState({ list, error: "", live });
    };
    (async () => {
      while (!abort.signal.aborted) {
        try {
          const events = client.backends.watchBackends({}, { signal: abort.signal, timeoutMs: 0 });
          byId.clear();
          for await (const event of events) {
            const backend = event.backend;
            if (!backend) continue;
            live = true;
            if (backend.state === BackendState.REMOVED) byId.delete(backend.id);
            else byId.set(backend.id, backend);
            publish();
          }
        } catch (err) {
          if (abort.signal.aborted) return;
          live = false;
          const code = ConnectError.from(err).code;
          setState((s) => ({ ...s, live: false, error: errorText(err) }));
          if (code === Code.PermissionDenied || code === Code.Unauthenticated) return;
        }
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    })();
    const refresh = setInterval(async () => {
      if (!live || document.visibilityState !== "visible") return;
      try {
        const { backends } = await client.backends.listBackends({}, { signal: abort.signal });
        // Only backends the watch knows: it alone says which exist, so none comes back to life.
        for (const backend of backends) if (byId.has(backend.id)) byId.set(backend.id, backend);
        publish();
      } catch {
        // The watch reports trouble; a missed refresh only leaves older figures on screen.
      }
    }, LOAD_REFRESH_MS);
    return () => {
      abort.abort();
      clearInterval(refresh);
    };
  }, [client]);
  return state;
}

/** The backends table. */
export function BackendsPanel(props: { state: BackendsState }) {
  const { list, error, live } = props.state;
  return (
    <section data-testid="backends">
      <h2>
        Backends <span class={live ? "badge ok" : "badge"}>{live ? "live" : "offline"}</span>
      </h2>
      {error && <p class="error">{error}</p>}
      {list.length === 0 && !error && <p class="muted">No backend is connected.</p>}
      {list.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>Backend</th>
              <th>State</th>
              <th>Breaker</th>
              <th>Load</th>
              <th>Engines</th>
              <th>Host</th>
              <th>GPUs</th>
            </tr>
          </thead>
          <tbody>
            {list.map((b) => (
              <BackendRow key={b.id} backend={b} />
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function BackendRow({ backend: b }: { backend: Backend }) {
  const state = enumName(BackendState, b.state);
  const load = b.load;
  const slots = load?.slots || b.capabilities?.slots || 0;
  return (
    <tr data-backend={b.id} data-state={state}>
      <td>
        <strong>{b.id}</strong>
        <div class="muted">
          {enumName(BackendKind, b.kind).toLowerCase()} · v{b.version || "?"} · priority{" "}
          {b.priority}
        </div>
      </td>
      <td>
        <span class={`badge state-${state.toLowerCase()}`}>{state}</span>
        {b.lastError && (
          // A READY backend's last error is history (a probe that once timed out), not an alarm.
          <div class={b.state === BackendState.READY ? "muted small" : "error small"}>
            last error: {b.lastError}
          </div>
        )}
      </td>
      <td>{enumName(BreakerState, b.breaker).replace("_", " ").toLowerCase()}</td>
      <td>
        {load?.inFlight ?? b.inFlight} / {slots} calls
        <div class="muted">
          {String(b.callsTotal)} calls, {String(b.failuresTotal)} failed
        </div>
      </td>
      <td>{b.capabilities?.engines.map((e) => e.id).join(", ")}</td>
      <td>
        {load ? (
          <>
            CPU {(load.cpuRatio * 100).toFixed(0)} %
            <div class="muted">RSS {formatBytes(load.rssBytes)}</div>
          </>
        ) : (
          "—"
        )}
      </td>
      <td>
        {load && load.gpus.length > 0
          ? load.gpus.map((gpu) => (
              <div key={gpu.index}>
                #{gpu.index} {gpu.name}
                <div class="muted">
                  {gpu.utilizationPercent !== undefined &&
                    `${gpu.utilizationPercent.toFixed(0)} % · `}
                  {gpu.memoryUsedMib !== undefined &&
                    `${gpu.memoryUsedMib.toFixed(0)}/${gpu.memoryTotalMib?.toFixed(0) ?? "?"} MiB · `}
                  {gpu.temperatureC !== undefined && `${gpu.temperatureC.toFixed(0)} °C · `}
                  {gpu.powerWatts !== undefined && `${gpu.powerWatts.toFixed(0)} W`}
                </div>
              </div>
            ))
          : "none reported"}
      </td>
    </tr>
  );
}
