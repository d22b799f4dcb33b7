import { type DestinationStream, type LevelWithSilent, type Logger, pino } from "pino";
import pretty from "pino-pretty";

/** How log lines are written: `auto` picks `pretty` on a terminal and `json` otherwise. */
export type LogFormat = "auto" | "json" | "pretty";

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Minimum level. @default "info" */
  level?: LevelWithSilent;
  /** Process role, bound on every line (`gateway`, `agent`). */
  service: string;
  /**
   * Line format. `pretty` writes one readable line per entry (time, level, message, fields) for
   * people at a terminal; `json` one object per line for collectors.
   * @default "auto"
   */
  format?: LogFormat;
  /** Where lines go; given, `format` is ignored (tests read the JSON). @default standard output */
  destination?: DestinationStream;
}

/**
 * Fields whose values are credentials wherever they appear in a logged object: bearer tokens and
 * headers, secrets, API keys, passwords, database URLs (they carry a password) and signed URLs
 * (each is a bearer credential until it expires). Components log ids and digests instead, never
 * these; the redaction is the net under that rule.
 */
const SECRET_FIELDS = [
  "token",
  "authorization",
  "secret",
  "apiKey",
  "api_key",
  "password",
  "databaseUrl",
  "signedUrl",
  "cookie",
];

/**
 * Creates the process's root logger, credentials redacted wherever they appear in logged objects.
 * Components take `log.child({ component })` from it.
 */
export function createLogger(options: LoggerOptions): Logger {
  const config = {
    level: options.level ?? "info",
    base: { service: options.service, pid: process.pid },
    redact: {
      paths: SECRET_FIELDS.flatMap((field) => [field, `*.${field}`]).concat([
        "headers.authorization",
        "*.headers.authorization",
        'headers["x-sf-job-token"]',
        '*.headers["x-sf-job-token"]',
      ]),
      censor: "[redacted]",
    },
  };
  if (options.destination) return pino(config, options.destination);
  const format = options.format ?? "auto";
  const usePretty = format === "pretty" || (format === "auto" && process.stdout.isTTY === true);
  if (!usePretty) return pino(config);
  // Synchronous, in this thread: a line is on screen before the process can exit or crash.
  const stream = pretty({
    sync: true,
    colorize: process.stdout.isTTY === true,
    translateTime: "SYS:HH:MM:ss.l",
    ignore: "pid,hostname,service",
    singleLine: true,
  });
  return pino(config, stream);
}
