/**
 * What the long-running commands (gateway, agent, start) share: settings errors as usage errors,
 * and waiting for the stop signal.
 */
import { isSettingsError } from "../../../services/config/settings.js";
import { CliUsageError } from "../cli-errors.js";

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
