/** `util.parseArgs` with CLI-friendly errors and small value parsers. */
import { type ParseArgsConfig, parseArgs } from "node:util";
import { CliUsageError, isParseArgsError } from "./cli-errors.js";

/**
 * Runs `util.parseArgs(config)` and turns its errors (unknown option, missing value, unexpected
 * positional) into {@link CliUsageError}s, so they exit 2 with the `--help` pointer. Pass
 * `strict: true` (the default) so typos are caught rather than ignored.
 */
export function parseFlags<const T extends ParseArgsConfig>(
  config: T,
): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    if (isParseArgsError(error)) throw new CliUsageError(error.message, { cause: error });
    throw error;
  }
}

/**
 * Parses the value of `--<flag>` as a finite number in `[min, max]`.
 *
 * @throws CliUsageError naming the flag and the accepted range.
 */
export function parseNumberFlag(flag: string, value: string, min: number, max: number): number {
  const number = value.trim() === "" ? Number.NaN : Number(value);
  if (!Number.isFinite(number) || number < min || number > max) {
    throw new CliUsageError(`--${flag} must be a number from ${min} to ${max}, got "${value}"`);
  }
  return number;
}

/**
 * Checks that `value` of `--<flag>` is one of `choices` and returns it typed.
 *
 * @throws CliUsageError listing the choices.
 */
export function parseChoiceFlag<const C extends string>(
  flag: string,
  value: string,
  choices: readonly C[],
): C {
  if ((choices as readonly string[]).includes(value)) return value as C;
  throw new CliUsageError(`--${flag} must be one of ${choices.join(", ")}, got "${value}"`);
}
