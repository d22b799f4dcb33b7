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
