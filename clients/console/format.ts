/** Small display helpers of the console. */
import { Code, ConnectError } from "@connectrpc/connect";

/** `1536` → `1.5 KiB`. */
export function formatBytes(bytes: number | bigint): string {
  let value = Number(bytes);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** `BACKEND_STATE_READY`-style enum value → `READY`, via the generated enum object. */
export function enumName(values: Record<number, string>, value: number): string {
  return values[value] ?? String(value);
}

/** A message for people from any error a call can throw. */
export function errorText(err: unknown): string {
  if (err instanceof ConnectError) {
    if (err.code === Code.Unauthenticated) return `signed-in token refused: ${err.rawMessage}`;
    if (err.code === Code.PermissionDenied) return `not allowed for this token: ${err.rawMessage}`;
    return `${Code[err.code]}: ${err.rawMessage}`;
  }
  return err instanceof Error ? err.message : String(err);
}
