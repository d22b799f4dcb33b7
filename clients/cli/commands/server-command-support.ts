/**
 * What the long-running commands (gateway, agent, start) share: settings errors as usage errors,
 * and waiting for the stop signal.
 */
import { isSettingsError } from "../../../services/config/settings.js";
import { CliError, CliUsageError } from "../cli-errors.js";

/** Runs `load`, turning an invalid setting into a usage error (exit 2) with the settings message. */
export function loadOrUsageError<T>(load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (isSettingsError(err)) throw new CliUsageError(err.message);
    throw err;
  }
}

/** Resolves when `signal` aborts (never, without a signal). */
export function untilAborted(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (!signal) return;
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/**
 * Starts a gateway's ports; a port that cannot be bound, or a data directory another process
 * holds, becomes a one-line failure (exit 1) after the gateway closed what it had started.
 */
export async function listenOrFail<T>(listen: () => Promise<T>): Promise<T> {
  try {
    return await listen();
  } catch (err) {
    // By name: importing the error classes here would load the whole gateway for every command.
    if (err instanceof Error && (err.name === "ListenError" || err.name === "DataDirLockedError")) {
      throw new CliError(err.message);
    }
    throw err;
  }
}

/**
 * Starts OpenTelemetry tracing when the standard `OTEL_*` variables ask for it (off by default;
 * README: Tracing): a bad value is a usage error. Off, the SDK is not even loaded.
 */
export async function startTracingFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  defaultServiceName: string,
): Promise<{ enabled: boolean; shutdown(): Promise<void> }> {
  const { tracingOptionsFromEnv } = await import("../../../services/tracing/tracing-settings.js");
  let options: ReturnType<typeof tracingOptionsFromEnv>;
  try {
    options = tracingOptionsFromEnv(env, defaultServiceName);
  } catch (err) {
    throw new CliUsageError((err as Error).message);
  }
  if (!options) return { enabled: false, shutdown: async () => {} };
  const { startTracing } = await import("../../../services/tracing/start-tracing.js");
  return startTracing(options);
}
