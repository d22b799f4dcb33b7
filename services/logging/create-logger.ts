import { type DestinationStream, type LevelWithSilent, type Logger, pino } from "pino";

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Minimum level. @default "info" */
  level?: LevelWithSilent;
  /** Process role, bound on every line (`gateway`, `agent`). */
  service: string;
  /** Where lines go. @default standard output */
  destination?: DestinationStream;
}

/**
 * Creates the process's root logger: JSON lines, credentials redacted wherever they appear in
 * logged objects. Components take `log.child({ component })` from it.
 */
export function createLogger(options: LoggerOptions): Logger {
  const config = {
    level: options.level ?? "info",
    base: { service: options.service, pid: process.pid },
    redact: {
      paths: [
        "token",
        "*.token",
        "authorization",
        "*.authorization",
        "headers.authorization",
        "*.headers.authorization",
        "secret",
        "*.secret",
      ],
      censor: "[redacted]",
    },
  };
  return options.destination ? pino(config, options.destination) : pino(config);
}
