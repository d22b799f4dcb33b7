import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { z } from "zod";

/**
 * One setting: where it can come from and how it is checked. Sources, strongest first: command-line
 * flag, environment variable, config file key, default.
 */
export interface SettingSpec<T> {
  /** Key in the config file (camelCase). */
  key: string;
  /** Command-line flag without dashes, or undefined for secrets (flags show up in `ps`). */
  flag: string | undefined;
  /** Environment variable. */
  env: string;
  /** One line for --help and the README. */
  description: string;
  /** Validation and coercion of the raw value. */
  schema: z.ZodType<T>;
  /** Value when no source sets it. */
  defaultValue: T;
}

/** Declares a setting. */
export function setting<T>(spec: SettingSpec<T>): SettingSpec<T> {
  return spec;
}

/** Resolved values of a settings table. */
export type SettingValues<Table extends Record<string, SettingSpec<unknown>>> = {
  [K in keyof Table]: Table[K] extends SettingSpec<infer T> ? T : never;
};

/**
 * The default of every setting of `table`, keyed like the table: for code that builds a component
 * by hand (tests, benches) and needs the values a started process would have, without copying them.
 */
export function settingDefaults<Table extends Record<string, SettingSpec<unknown>>>(
  table: Table,
): SettingValues<Table> {
  return Object.fromEntries(
    Object.entries(table).map(([name, spec]) => [name, spec.defaultValue]),
  ) as SettingValues<Table>;
}

/** Raised when a setting is invalid; the message names the setting, its source and the rule. */
export class SettingsError extends Error {
  override readonly name = "SettingsError";
}

/** Returns whether `err` is a {@link SettingsError}. */
export function isSettingsError(err: unknown): err is SettingsError {
  return err instanceof SettingsError;
}

/** Where settings are read from. */
export interface SettingSources {
  /** Command-line arguments after the command name. */
  argv: readonly string[];
  /** Environment. */
  env: Readonly<Record<string, string | undefined>>;
}

/**
 * Resolves every setting of `table` from flags, environment, the config file named by the
 * `config` setting (JSON), and defaults; validates all of them and throws one {@link SettingsError}
 * listing every problem, so a misconfigured process fails at start with a clear message.
 */
export function loadSettings<Table extends Record<string, SettingSpec<unknown>>>(
  table: Table,
  sources: SettingSources,
): SettingValues<Table> & { config: string; positionals: string[] } {
  const specs = Object.values(table);
  const options: Record<string, { type: "string" | "boolean" }> = {
    config: { type: "string" },
  };
  for (const spec of specs) {
    if (spec.flag) options[spec.flag] = { type: "string" };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...sources.argv], options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new SettingsError(err instanceof Error ? err.message : String(err));
  }
  const flags = parsed.values as Record<string, string | undefined>;
  const configPath = flags.config ?? sources.env.VOXGATE_CONFIG ?? "";
  const file = configPath ? readConfigFile(configPath) : {};

  const problems: string[] = [];
  const knownKeys = new Set(specs.map((s) => s.key));
  for (const key of Object.keys(file)) {
    if (!knownKeys.has(key)) problems.push(`config file ${configPath}: unknown key "${key}"`);
  }
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(table)) {
    const flagValue = spec.flag ? flags[spec.flag] : undefined;
    const envValue = sources.env[spec.env];
    const [raw, source] =
      flagValue !== undefined
        ? [flagValue, `--${spec.flag}`]
        : envValue !== undefined && envValue !== ""
          ? [envValue, spec.env]
          : spec.key in file
            ? [file[spec.key], `"${spec.key}" in ${configPath}`]
            : [undefined, "default"];
    if (raw === undefined) {
      values[name] = spec.defaultValue;
      continue;
    }
    const result = spec.schema.safeParse(raw);
    if (result.success) {
      values[name] = result.data;
    } else {
      const rule = result.error.issues.map((i) => i.message).join("; ");
      problems.push(`${spec.key} from ${source}: ${rule}`);
    }
  }
  if (problems.length > 0) {
    throw new SettingsError(`invalid settings:\n  - ${problems.join("\n  - ")}`);
  }
  return {
    ...(values as SettingValues<Table>),
    config: configPath,
    positionals: parsed.positionals,
  };
}

/** Renders a settings table as aligned text for --help. */
export function describeSettings(table: Record<string, SettingSpec<unknown>>): string {
  const rows = Object.values(table).map((s) => [
    s.flag ? `--${s.flag}` : "",
    s.env,
    s.key,
    JSON.stringify(s.defaultValue),
    s.description,
  ]);
  const header = ["flag", "env", "config key", "default", "meaning"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < cells.length - 1 ? c.padEnd(widths[i] ?? 0) : c)).join("  ");
  return [line(header), ...rows.map(line)].join("\n");
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new SettingsError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new Error("the top level must be an object");
    }
    return value as Record<string, unknown>;
  } catch (err) {
    throw new SettingsError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
}

/** Integer in [min, max], from a string or number. */
export function intSetting(min: number, max: number): z.ZodType<number> {
  // Number("") and Number(" ") are 0: a blank value must be an error, not port 0.
  return z
    .union(
      [
        z.number(),
        z
          .string()
          .regex(/^\s*-?\d+\s*$/, { error: "must be a whole number" })
          .transform(Number),
      ],
      {
        error: (issue) =>
          typeof issue.input === "string" && /^\s*-?\d*\.\d*\s*$/.test(issue.input)
            ? "must be a whole number"
            : "must be a number",
      },
    )
    .pipe(
      z
        .number({ error: "must be a number" })
        .int({ error: "must be a whole number" })
        .min(min, { error: `must be at least ${min}` })
        .max(max, { error: `must be at most ${max}` }),
    );
}

/** TCP port, 0 meaning any free port. */
export const portSetting = intSetting(0, 65_535);

/**
 * Boolean: `true`/`false`, `1`/`0` or `yes`/`no` (any case, trimmed) from a string, since
 * environment variables and flags are text, or a boolean from the config file.
 */
export const boolSetting: z.ZodType<boolean> = z.union([
  z.boolean(),
  z
    .string()
    .trim()
    .toLowerCase()
    .refine((v) => ["true", "false", "1", "0", "yes", "no"].includes(v), {
      error: "must be true or false",
    })
    .transform((v) => v === "true" || v === "1" || v === "yes"),
]);

/** Non-empty string. */
export const stringSetting = z.string().min(1, { error: "must not be empty" });

/** Log level. */
export const logLevelSetting = z.enum([
  "fatal",
  "error",
  "warn",
  "info",
  "debug",
  "trace",
  "silent",
]);

/**
 * The agent token variable, declared once for both processes: the token a gateway accepts on its
 * agent port and the one an agent presents, so one machine's environment serves both.
 */
export const agentTokenVariable = {
  env: "VOXGATE_AGENT_TOKEN",
  schema: stringSetting,
  defaultValue: "",
};

/** The log format setting every voxgate process shares. */
export const logFormatSpec = setting({
  key: "logFormat",
  flag: "log-format",
  env: "VOXGATE_LOG_FORMAT",
  description:
    "auto (pretty lines on a terminal, JSON otherwise), json (one object per line) or pretty",
  schema: z.enum(["auto", "json", "pretty"]),
  defaultValue: "auto" as const,
});

/** The log level setting every voxgate process shares. */
export const logLevelSpec = setting({
  key: "logLevel",
  flag: "log-level",
  env: "VOXGATE_LOG_LEVEL",
  description: "fatal, error, warn, info, debug, trace or silent",
  schema: logLevelSetting,
  defaultValue: "info" as const,
});
